import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agent } from '../../system/index.js';
import { checkProperty, faults, runScenario } from '../../testkit/index.js';

// Issue 12, item 9, as a property: with default breaker options, a burst of poison tasks (at least the
// breaker's threshold, in a row) ends in bounded time whatever follows it; healthy tasks behind it
// complete at their first attempt; and an outage shorter than maxHoldMs (5 min) dead-letters none.
const stage = agent({ name: 's', handle: (x: { id: string }) => x.id });
const HOUR = 3_600_000;

describe('poison bursts with default breaker options', () => {
  it('end in bounded time, complete every healthy task behind them, and let a short outage charge nothing', async () => {
    await checkProperty(
      fc.asyncProperty(
        fc.record({
          poison: fc.integer({ min: 5, max: 9 }),
          healthy: fc.integer({ min: 0, max: 8 }),
          outageMs: fc.option(fc.integer({ min: 1_000, max: 4 * 60_000 }), { nil: undefined }),
          seed: fc.integer({ min: 0, max: 1_000 }),
        }),
        async ({ poison, healthy, outageMs, seed }) => {
          const poisonIds = Array.from({ length: poison }, (_, i) => `p${i}`);
          const healthyIds = Array.from({ length: healthy }, (_, i) => `h${i}`);
          const plan = { seed, stages: { s: [faults.poison(poisonIds), ...(outageMs === undefined ? [] : [faults.outage(0, outageMs)])] } };
          const rec = await runScenario({ stages: [stage], inputs: [...poisonIds, ...healthyIds].map((id) => ({ id })), idOf: (w) => w.id, taskIdOf: (w) => (w as { id: string }).id, plan, limitMs: 6 * HOUR });
          expect(rec.drained, 'every accepted task ended').toBe(true);
          // Bound: the 5 min hold, then for each poison task 3 charged probes at most 60 s apart (plus slack).
          expect(rec.endedAt).toBeLessThanOrEqual(5 * 60_000 + poison * 3 * 61_000 + 120_000);
          const byId = new Map(rec.outcomes.map((o) => [o.id, o]));
          for (const id of poisonIds) expect(byId.get(id)?.status, id).toBe('dead-lettered');
          for (const id of healthyIds) expect(byId.get(id)?.status, id).toBe('completed');
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});
