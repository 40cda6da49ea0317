import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agent } from '../../system/index.js';
import { arbitraries, checkProperty, faults, runScenario } from '../../testkit/index.js';

// Issue 16, item 4: a budget is never overspent by more than the runs in flight when it ran out.
// Each call costs `spend` tokens when its (delayed) model call answers; the agent has `budget.tokens`
// per `perMs`. Replaying the recorded spends in the order they happened, window by window as the budget counts
// them (a window begins with its first spend and lasts perMs): no run may start while its window is
// spent, so a window's total exceeds the limit by at most the costs of the runs already in flight,
// at most `concurrency` of them. With 'hold' every task completes; with 'dead-letter' the ones that
// met a spent budget end with ERR_BUDGET_EXHAUSTED, and nothing is lost either way.
/** The last window of `spends` (in order) as the budget counts them: it begins with a spend and lasts perMs; -1: none. */
function lastWindow(spends: readonly { readonly at: number; readonly tokens: number }[], perMs: number): { since: number; total: number } {
  let since = -1;
  let total = 0;
  for (const s of spends) {
    if (since < 0 || s.at >= since + perMs) {
      since = s.at;
      total = 0;
    }
    total += s.tokens;
  }
  return { since, total };
}

describe('an agent with a token budget', () => {
  it('overspends a window by at most the runs in flight when it ran out, and loses no task', async () => {
    await checkProperty(
      fc.asyncProperty(
        fc.record({
          tasks: fc.integer({ min: 1, max: 40 }),
          concurrency: fc.integer({ min: 1, max: 6 }),
          spend: arbitraries.fault({ kinds: ['spend'] }),
          limit: fc.integer({ min: 1, max: 3_000 }),
          perMs: fc.integer({ min: 100, max: 5_000 }),
          delay: fc.record({ minMs: fc.integer({ min: 1, max: 50 }), extra: fc.integer({ min: 0, max: 200 }) }),
          onExhausted: fc.constantFrom('hold' as const, 'dead-letter' as const),
          seed: fc.integer({ min: 0, max: 1_000 }),
        }),
        async ({ tasks, concurrency, spend, limit, perMs, delay, onExhausted, seed }) => {
          const ids = Array.from({ length: tasks }, (_, i) => `t${i}`);
          const stage = agent({ name: 's', concurrency, budget: { tokens: limit, perMs, onExhausted }, handle: async (x: { id: string }) => x.id });
          const plan = { seed, stages: { s: [faults.delay(delay.minMs, delay.minMs + delay.extra), spend] } };
          const rec = await runScenario({ stages: [stage], inputs: ids.map((id) => ({ id })), idOf: (w) => w.id, taskIdOf: (w) => (w as { id: string }).id, plan, limitMs: 24 * 3_600_000 });
          expect(rec.drained, 'every accepted task ended').toBe(true);
          expect(rec.outcomes).toHaveLength(tasks);
          const cost = (spend as { tokens: number }).tokens;
          // Windows as the budget counts them, from the recorded spends in the order they happened.
          const spends = rec.calls.filter((c) => c.spent !== undefined).map((c) => c.spent!).sort((a, b) => a.seq - b.seq);
          for (let i = 1; i <= spends.length; i++) {
            const w = lastWindow(spends.slice(0, i), perMs);
            expect(w.total, `a window from ${w.since} ms spent ${w.total} of ${limit}`).toBeLessThanOrEqual(limit - 1 + concurrency * cost);
          }
          // No run started while its window was spent: each start against the spends before it.
          for (const c of rec.calls) {
            const w = lastWindow(spends.filter((s) => s.seq < c.startSeq), perMs);
            const spentOut = w.since >= 0 && c.at < w.since + perMs && w.total >= limit;
            expect(spentOut, `call of ${c.taskId} started at ${c.at} ms with ${w.total} of ${limit} spent since ${w.since}`).toBe(false);
          }
          for (const o of rec.outcomes) {
            if (onExhausted === 'hold') expect(o.status, o.id).toBe('completed');
            else if (o.status === 'dead-lettered') expect(o.error.code, o.id).toBe('ERR_BUDGET_EXHAUSTED');
          }
        },
      ),
      { numRuns: 80 },
    );
  }, 120_000);
});
