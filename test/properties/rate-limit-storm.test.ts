import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agent } from '../../system/index.js';
import { arbitraries, checkProperty, faults, runScenario } from '../../testkit/index.js';

// Issue 16: a storm of 429s is the server's business, not the tasks'. Whatever the storm's window,
// density and Retry-After (or none), and with poison beside it: no task is charged for a refusal,
// every accepted task ends, the poison is dead-lettered and nothing else.
const stage = (concurrency: number) => agent({ name: 's', concurrency, handle: async (x: { id: string }) => x.id });

describe('a storm of rate-limit refusals', () => {
  it('charges no task, loses none, and dead-letters only the poison', async () => {
    await checkProperty(
      fc.asyncProperty(
        fc.record({
          tasks: fc.integer({ min: 1, max: 30 }),
          concurrency: fc.integer({ min: 1, max: 4 }),
          storm: arbitraries.fault({ kinds: ['rate-limit'], horizonMs: 10_000 }),
          poison: fc.uniqueArray(fc.integer({ min: 0, max: 29 }), { maxLength: 2 }),
          seed: fc.integer({ min: 0, max: 1_000 }),
        }),
        async ({ tasks, concurrency, storm, poison, seed }) => {
          const ids = Array.from({ length: tasks }, (_, i) => `t${i}`);
          const poisonIds = poison.filter((i) => i < tasks).map((i) => `t${i}`);
          const plan = { seed, stages: { s: [storm, ...(poisonIds.length > 0 ? [faults.poison(poisonIds)] : [])] } };
          const rec = await runScenario({ stages: [stage(concurrency)], inputs: ids.map((id) => ({ id })), idOf: (w) => w.id, taskIdOf: (w) => (w as { id: string }).id, plan, limitMs: 3_600_000 });
          expect(rec.drained, 'every accepted task ended').toBe(true);
          expect(rec.outcomes).toHaveLength(tasks);
          for (const o of rec.outcomes) {
            const refusals = o.errors.filter((e) => e.error.code === 'INJECTED_RATE_LIMIT');
            expect(refusals.every((e) => !e.charged), `${o.id}: a refusal was charged`).toBe(true);
            expect(o.status, o.id).toBe(poisonIds.includes(o.id) ? 'dead-lettered' : 'completed');
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});
