import { describe, expect, it } from 'vitest';
import { agent, type BreakerOptions } from '../../system/index.js';
import { faults, runScenario } from '../../testkit/index.js';

// Issue 12, item 10: a poison-heavy batch (70% corrupt inputs, breaker off) escalated the stage past
// its restart intensity and the pipeline stopped, dead-lettering hundreds of healthy tasks with
// ERR_PIPELINE_FAILED. A failure charged to its task is the task's, not the agent's: only a worker
// that cannot run (init failing, uncharged failures) counts toward restart intensity.
const stage = (breaker: BreakerOptions | false) => agent({ name: 's', handle: (x: { id: string }) => x.id, breaker });

describe.each([
  ['off', false],
  ['on', {}],
] as [string, BreakerOptions | false][])('a batch of 500 tasks, 70%% poison, breaker %s', (_name, breaker) => {
  it('completes every healthy task, dead-letters every poison one after its attempts, and keeps the pipeline running', async () => {
    const ids = Array.from({ length: 500 }, (_, i) => `t${i}`);
    const poison = ids.filter((_, i) => i % 20 < 14); // runs of 14 poison tasks, then 6 healthy
    const rec = await runScenario({
      stages: [stage(breaker)],
      inputs: ids.map((id) => ({ id })),
      idOf: (w) => w.id,
      taskIdOf: (w) => (w as { id: string }).id,
      plan: { seed: 3, stages: { s: [faults.poison(poison)] } },
      limitMs: 24 * 3_600_000,
    });
    expect(rec.failure).toBeUndefined();
    expect(rec.drained).toBe(true);
    const byId = new Map(rec.outcomes.map((o) => [o.id, o]));
    const poisoned = new Set(poison);
    for (const id of ids) {
      const o = byId.get(id);
      if (poisoned.has(id)) expect(o, id).toMatchObject({ status: 'dead-lettered', attempts: 3, error: { code: 'ERR_TASK_FAILED' } });
      else expect(o?.status, id).toBe('completed');
    }
  }, 60_000);
});
