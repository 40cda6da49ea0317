import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agent, createSystem, simulatedClock, type Outcome } from '../../system/index.js';
import { checkProperty } from '../../testkit/index.js';

/**
 * The bare async lane (a one-parameter handler returning a promise) reuses its run records once they
 * settle well. The testkit's generated faults give handlers a ctx (hang and delay need its signal), so
 * they never reach this lane; this property does. Calls succeed, reject or throw after generated delays
 * on the simulated clock, some well past timeoutMs, while failures escalate the stage and the
 * pipeline restarts it (taking back the runs in flight). A result that arrives after the stage gave
 * up on its run must never reach anyone, least of all the task now running on the same record.
 */
const call = fc.record({
  kind: fc.constantFrom('ok', 'ok', 'ok', 'reject', 'throw'),
  delayMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
});
const plan = fc.record({
  // Per task: how its 1st, 2nd, ... call behaves (the last one repeats).
  tasks: fc.array(fc.array(call, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 24 }),
  concurrency: fc.integer({ min: 1, max: 4 }),
  timeoutMs: fc.integer({ min: 5, max: 40 }),
  maxAttempts: fc.integer({ min: 1, max: 3 }),
  maxRestarts: fc.integer({ min: 0, max: 3 }), // 0: every failure escalates and the stage is restarted
});

interface Out {
  readonly task: number;
  /** The call's delay was past timeoutMs: the stage must have given up on it before it resolved. */
  readonly doomed: boolean;
}

describe('the bare async lane under timeouts, failures and stage restarts', () => {
  it('gives every task one outcome, its own output, and never passes on a result the stage gave up on (seed printed on failure)', async () => {
    await checkProperty(
      fc.asyncProperty(plan, async (p) => {
        const clock = simulatedClock();
        const system = createSystem({ logger: false, clock, random: 7 });
        const calls = new Map<number, number>();
        const passed: Out[] = [];
        const pipe = system.spawnPipeline<number, Out>({
          name: 'p',
          supervisor: { maxRestarts: 1_000, withinMs: 1 },
          stages: [
            agent({
              name: 'bare',
              concurrency: p.concurrency,
              timeoutMs: p.timeoutMs,
              breaker: false,
              retry: { maxAttempts: p.maxAttempts, backoff: { minMs: 1, maxMs: 3 } },
              restart: { maxRestarts: p.maxRestarts, withinMs: 1_000, backoff: { minMs: 1, maxMs: 3 } },
              handle: (task: number): Promise<Out> => {
                const n = (calls.get(task) ?? 0) + 1;
                calls.set(task, n);
                const spec = p.tasks[task]!;
                const { kind, delayMs } = spec[Math.min(n, spec.length) - 1]!;
                if (kind === 'throw') throw new Error(`throw ${task}`);
                const out: Out = { task, doomed: delayMs > p.timeoutMs };
                if (delayMs === 0) return kind === 'ok' ? Promise.resolve(out) : Promise.reject(new Error(`reject ${task}`));
                return new Promise((resolve, reject) => clock.setTimer(delayMs, () => (kind === 'ok' ? resolve(out) : reject(new Error(`reject ${task}`)))));
              },
            }),
            agent({ name: 'next', handle: (o: Out) => (passed.push(o), o) }),
          ],
        });
        const outcomes: Outcome<Out>[] = [];
        pipe.onOutcome((o) => outcomes.push(o));
        await pipe.sendMany(p.tasks.map((_, i) => i));
        let drained = false;
        void pipe.drain().then(() => (drained = true));
        // Jump from timer to timer (time lands exactly on deadlines and delays), then past every late result.
        // With no timer left, a few idle turns without the drain mean a task is stuck: stop and report.
        // (A run needs at most a few hundred timer steps and a few seconds of simulated time.)
        for (let steps = 0, idle = 0; steps < 3_000 && clock.now() < 60_000 && !drained && idle < 20; steps++) {
          await new Promise<void>((r) => setImmediate(r));
          const at = clock.nextAt();
          idle = at === undefined ? idle + 1 : 0;
          if (at !== undefined) await clock.advance(Math.max(0, at - clock.now()));
        }
        await clock.advance(1_000);
        await new Promise<void>((r) => setImmediate(r));

        expect(drained).toBe(true);
        expect(outcomes).toHaveLength(p.tasks.length);
        expect(new Set(outcomes.map((o) => o.id)).size).toBe(p.tasks.length);
        const done = outcomes.filter((o) => o.status === 'completed');
        // Its own output (a reused record never carries another task's result), never a doomed one.
        for (const o of done) expect(o.output).toEqual({ task: Number(o.id.split('-').pop()) - 1, doomed: false });
        expect(passed.filter((o) => o.doomed)).toEqual([]);
        expect(passed.map((o) => o.task).sort((a, b) => a - b)).toEqual(done.map((o) => o.output!.task).sort((a, b) => a - b));
        expect(pipe.stats().stages.map((s) => s.inFlight)).toEqual([0, 0]);
        await system.shutdown();
      }),
      { numRuns: 300 },
    );
  });
});
