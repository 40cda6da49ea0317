import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { agent, simulatedClock } from '../../system/index.js';
import { apply, check, faults, runScenario, type Fault } from '../../testkit/index.js';

// Edge cases of the testkit found by a review (each test failed before its fix).

describe('the testkit, edge cases', () => {
  it("does not take a Node error's ERR_* code in a clean stage's own handler for an isolation breach", async () => {
    const stages = [agent({ name: 'a', handle: (x: number) => x }), agent({ name: 'b', retry: { maxAttempts: 1 }, handle: (x: number) => new URL(`nope ${x}`).href })];
    const rec = await runScenario({ stages, inputs: [0], plan: { seed: 1, stages: { a: [faults.throwOnCall(1)] } } });
    expect(check(rec, { only: ['isolation'] }).violations).toEqual([]);
  });

  it('draws a flaky fault on every call, so dropping an earlier fault does not shift its decisions', () => {
    const pattern = (fs: Fault[]) => {
      const [wrapped] = apply({ seed: 42, stages: { a: fs } }, [agent({ name: 'a', handle: (x: number) => x })], { clock: simulatedClock() });
      const ctx = { taskId: 'z', key: undefined, attempt: 1, signal: new AbortController().signal, log: undefined, state: undefined, stage: 'a' } as never;
      return Array.from({ length: 20 }, () => {
        try {
          wrapped!.handle(1, ctx);
          return '.';
        } catch (e) {
          return (e as { fault?: string }).fault === 'flaky' ? 'F' : 'T';
        }
      }).join('');
    };
    expect(pattern([faults.throwOnCall(1), faults.flaky(0.5)]).slice(1)).toBe(pattern([faults.flaky(0.5)]).slice(1));
  });

  it('stops listening to a run\'s signal once the call has ended, so a signal shared by many calls gathers no listeners', async () => {
    const [wrapped] = apply({ seed: 1, stages: {} }, [agent({ name: 'a', handle: async (x: number) => x + 1 })], { clock: simulatedClock() });
    const signal = new AbortController().signal;
    const ctx = { taskId: 'z', key: undefined, attempt: 1, signal, log: undefined, state: undefined, stage: 'a' } as never;
    for (let i = 0; i < 20; i++) expect(await wrapped!.handle(i, ctx)).toBe(i + 1);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('reports a stuck scenario at once instead of stepping through an hour of simulated time', async () => {
    const started = Date.now();
    const stages = [agent({ name: 'a', timeoutMs: Infinity, mailbox: { capacity: 1 }, handle: (_x: number) => new Promise(() => undefined) })];
    const rec = await runScenario({ stages, inputs: [0, 1, 2, 3] });
    expect(check(rec).violations.map((v) => v.invariant)).toContain('progress');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
