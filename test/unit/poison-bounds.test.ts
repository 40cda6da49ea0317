import { describe, expect, it } from 'vitest';
import { agent, seededRandom, type AgentOptions } from '../../system/index.js';
import { faults, runScenario, type Fault, type Recording } from '../../testkit/index.js';

// Livelocks one might fear in a breaker like Baton's (refunds while open, held tasks, maxHoldMs),
// checked on simulated time. Each scenario must end, dead-letter exactly the
// poison (each after its 3 attempts) and complete every healthy task.
const MIN = 60_000;
const HOUR = 60 * MIN;
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

interface Run {
  readonly inputs: readonly string[];
  readonly poison: readonly string[];
  readonly faults?: readonly Fault[];
  readonly concurrency?: number;
  readonly retry?: { maxAttempts: number };
  readonly classify?: AgentOptions<unknown, unknown>['classify'];
  readonly seed?: number;
  readonly limitMs: number;
}

async function run(o: Run): Promise<Recording> {
  return runScenario({
    stages: [agent({ name: 's', concurrency: o.concurrency ?? 1, ...(o.retry ? { retry: o.retry } : {}), ...(o.classify ? { classify: o.classify } : {}), handle: async (x: { id: string }) => x.id })],
    inputs: o.inputs.map((id) => ({ id })),
    idOf: (w) => w.id,
    taskIdOf: (w) => (w as { id: string }).id,
    plan: { seed: o.seed ?? 5, stages: { s: [faults.poison([...o.poison]), ...(o.faults ?? [])] } },
    limitMs: o.limitMs,
  });
}

/** Ended, exactly the poison dead-lettered (ERR_TASK_FAILED after maxAttempts), every healthy task completed. */
function expectEndedCorrectly(rec: Recording, o: Run, maxAttempts = 3): void {
  const summary = `ended ${rec.outcomes.length} of ${o.inputs.length} by ${rec.endedAt} ms`;
  expect(rec.drained, summary).toBe(true);
  expect(rec.failure).toBeUndefined();
  const byId = new Map(rec.outcomes.map((x) => [x.id, x]));
  const poisoned = new Set(o.poison);
  for (const id of o.inputs) {
    if (poisoned.has(id)) expect(byId.get(id), id).toMatchObject({ status: 'dead-lettered', attempts: maxAttempts, error: { code: 'ERR_TASK_FAILED' } });
    else expect(byId.get(id)?.status, id).toBe('completed');
  }
}

/** The breaker's documented bound (policies/breaker.ts, maxHoldMs): the 5 min hold, then each poison task at most 3 charged probes at most 61 s apart. */
const documentedBound = (poison: number) => 5 * MIN + poison * 3 * 61_000 + 2 * MIN;

describe('5 poison tasks and 1 healthy task with a 1 s outage at the start', () => {
  const poison = ids('p', 5);
  const orders: [string, string[]][] = [
    ['the healthy task last', [...poison, 'h0']],
    ['the healthy task first', ['h0', ...poison]],
    ['the healthy task in the middle', ['p0', 'p1', 'h0', 'p2', 'p3', 'p4']],
  ];
  describe.each([1, 4])('at concurrency %i', (concurrency) => {
    it.each(orders)('ends within the documented bound, with %s completed and every poison task dead-lettered', async (_name, inputs) => {
      for (const delay of [[], [faults.delay(100)]]) {
        const o: Run = { inputs, poison, faults: [faults.outage(0, 1_000), ...delay], concurrency, limitMs: 24 * HOUR };
        const rec = await run(o);
        expectEndedCorrectly(rec, o);
        // Measured (December 2026): 10.2-11.5 min of simulated time.
        expect(rec.endedAt).toBeLessThanOrEqual(documentedBound(5));
      }
    });
  });
});

// 500 tasks with 70% poison: test/unit/poison-burst-time.test.ts.

describe('a 10 s outage in the middle of a batch with 20% poison', () => {
  // 400 tasks of 100 ms (concurrency 1) or 400 ms (concurrency 4): about 45 s of work, the outage from 10 s to 20 s.
  const classifiers: [string, Run['classify']][] = [
    ['read as transient (the default rules)', undefined],
    ['read as an outage by the agent', (e) => ((e as { code?: string }).code === 'INJECTED_OUTAGE' ? 'outage' : undefined)],
  ];
  describe.each(classifiers)('with the outage %s', (_name, classify) => {
    it.each([
      [1, 1], [1, 2], [1, 3], [4, 1], [4, 2], [4, 3],
    ])('at concurrency %i (seed %i) dead-letters no healthy task, every poison task after its attempts, and ends within 30 min', async (concurrency, seed) => {
      const r = seededRandom(seed);
      const all = ids('t', 400);
      const poison = all.filter(() => r() < 0.2);
      const o: Run = { inputs: all, poison, faults: [faults.delay(concurrency === 1 ? 100 : 400), faults.outage(10_000, 20_000)], concurrency, classify, seed, limitMs: 24 * HOUR };
      const rec = await run(o);
      // The outage did hit runs (not only the poison).
      expect(rec.calls.some((c) => c.fault === 'outage')).toBe(true);
      expectEndedCorrectly(rec, o);
      // Measured (December 2026): about 1 min of simulated time.
      expect(rec.endedAt).toBeLessThanOrEqual(30 * MIN);
    });
  });
});
