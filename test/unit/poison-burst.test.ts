import { describe, expect, it } from 'vitest';
import { agent } from '../../system/index.js';
import { faults, runScenario } from '../../testkit/index.js';

// Issue 12, item 9: five or more poison tasks in a row, with nothing healthy behind them, opened the
// breaker and never ended with default options (maxHoldMs was Infinity): every probe was a fresh task,
// and a fresh probe's failure is the agent's. With healthy tasks behind them, those waited 13-14 s.
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const stage = agent({ name: 's', handle: (x: { id: string }) => x.id });

describe('a burst of poison tasks with default breaker options', () => {
  it('ends: every poison task is dead-lettered in bounded time, with nothing healthy behind it', async () => {
    const poison = ids('p', 6);
    const rec = await runScenario({
      stages: [stage],
      inputs: poison.map((id) => ({ id })),
      idOf: (w) => w.id,
      taskIdOf: (w) => (w as { id: string }).id,
      plan: { seed: 1, stages: { s: [faults.poison(poison)] } },
      limitMs: 4 * 3_600_000,
    });
    expect(rec.drained).toBe(true);
    expect(rec.outcomes.map((o) => o.status)).toEqual(poison.map(() => 'dead-lettered'));
    // The documented bound: maxHoldMs (5 min) of holding, then maxAttempts charged probes per task,
    // one per probe interval (at most 60 s): 6 tasks x 3 attempts x 60 s = 18 min, plus the hold.
    expect(rec.endedAt).toBeLessThanOrEqual(5 * 60_000 + 6 * 3 * 60_000 + 60_000);
  });

  it('completes the healthy tasks behind it and charges none of them', async () => {
    const poison = ids('p', 5);
    const healthy = ids('h', 10);
    const rec = await runScenario({
      stages: [stage],
      inputs: [...poison, ...healthy].map((id) => ({ id })),
      idOf: (w) => w.id,
      taskIdOf: (w) => (w as { id: string }).id,
      plan: { seed: 1, stages: { s: [faults.poison(poison)] } },
      limitMs: 4 * 3_600_000,
    });
    expect(rec.drained).toBe(true);
    const byId = new Map(rec.outcomes.map((o) => [o.id, o]));
    for (const id of healthy) expect(byId.get(id), id).toMatchObject({ status: 'completed', attempts: 1 });
    for (const id of poison) expect(byId.get(id)?.status, id).toBe('dead-lettered');
  });
});

describe('an outage shorter than maxHoldMs (5 min by default)', () => {
  it('dead-letters no healthy task once the breaker opened, with only a few tasks to probe with', async () => {
    // 6 tasks: enough fresh failures (threshold 5) to open the breaker; each is probed many times in 4 min.
    const healthy = ids('h', 6);
    const rec = await runScenario({
      stages: [stage],
      inputs: healthy.map((id) => ({ id })),
      idOf: (w) => w.id,
      taskIdOf: (w) => (w as { id: string }).id,
      plan: { seed: 1, stages: { s: [faults.outage(0, 4 * 60_000)] } },
      limitMs: 4 * 3_600_000,
    });
    expect(rec.drained).toBe(true);
    expect(rec.outcomes.map((o) => o.status)).toEqual(healthy.map(() => 'completed'));
  });
});
