import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraries, checkProperty, invariants, runScenario } from 'baton-actors/testkit';
import { invoiceStages, type Store } from './invoices.js';

// Twenty invoice lines; every seventh is malformed (poison by nature, not by injection).
const lines = Array.from({ length: 20 }, (_, i) => (i % 7 === 6 ? `broken line ${i}` : `inv-${i},customer-${i % 3},${(i * 12.5).toFixed(2)}`));

describe('the invoice pipeline under any fault plan', () => {
  it('stores every completed invoice, and dead-letters malformed ones at parse and good ones only for injected faults', () =>
    checkProperty(
      fc.asyncProperty(arbitraries.faultPlan({ stages: ['parse', 'store'], kinds: ['flaky', 'delay', 'outage', 'throw-on-call', 'init-fails'] }), async (plan) => {
        const store: Store = { rows: new Map() };
        const run = await runScenario({
          stages: invoiceStages(store),
          inputs: lines,
          plan,
          // Generous retries, as production would set them: a flaky call must not cost an invoice.
          pipeline: { defaults: { retry: { maxAttempts: 6 }, timeoutMs: 1_000 } },
        });
        invariants.assertAll(run); // conservation, progress, no upstream replay, isolation, bounds, ...

        for (const o of run.outcomes) {
          const line = lines[Number(o.id.slice(1))]!; // runScenario names task i `t<i>`
          if (line.startsWith('broken')) {
            // Poison by nature: dead-lettered at parse whatever the plan; every failure is its own
            // 'cannot parse' or one the plan injected (an outage may hit it too).
            expect(o).toMatchObject({ status: 'dead-lettered', stage: 'parse' });
            for (const e of o.errors) expect(e.error.message.includes('cannot parse') || e.error.code?.startsWith('INJECTED_')).toBe(true);
          } else if (o.status === 'completed') {
            expect(store.rows.get(o.output as string)?.id).toBe(line.split(',')[0]);
          } else {
            // A good invoice is dead-lettered only when injected faults outlasted its six attempts.
            expect(o.errors.filter((e) => e.charged).every((e) => e.error.code?.startsWith('INJECTED_'))).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    ));
});
