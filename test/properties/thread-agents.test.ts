import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agent, createSystem, type Outcome } from '../../system/index.js';
import { checkProperty } from '../../testkit/index.js';

// Thread agents keep the stage's promises whatever their handlers do to their worker: every accepted
// task ends exactly once, with the outcome its input calls for, and the stage goes on. Real threads
// and real time, so few runs (each ~0.1-0.5 s alone; each new worker loads tsx here, which on the loaded CI
// machine takes seconds); the seed is printed on failure (checkProperty).
const OPS = new URL('../support/threads/ops.mjs', import.meta.url);

type Op = { kind: 'n'; n: number } | { kind: 'throw' } | { kind: 'exit' } | { kind: 'loop' } | { kind: 'async'; n: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: -1000, max: 1000 }).map((n) => ({ kind: 'n' as const, n })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 100 }).map((n) => ({ kind: 'async' as const, n })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'throw' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'exit' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'loop' as const }) },
);

const inputOf = (o: Op): unknown =>
  o.kind === 'n' ? o.n : o.kind === 'async' ? { op: 'async', n: o.n } : o.kind === 'throw' ? { op: 'throw', n: 1 } : { op: o.kind };

/**
 * What each op must end as: its output, or its dead-letter code. A worker that exits is seen when its
 * 'exit' event comes; on a loaded machine the deadline of the run that killed it may come first. The
 * timeout is 500 ms: at 150 ms, on a machine running three suites at once, a task's answer was still on
 * its way from the worker at its deadline now and then (a 'throw' ended as ERR_TIMEOUT).
 */
const expected = (o: Op): { status: 'completed'; output: unknown } | { status: 'dead-lettered'; codes: string[] } =>
  o.kind === 'n' ? { status: 'completed', output: o.n * 2 }
  : o.kind === 'async' ? { status: 'completed', output: o.n }
  : o.kind === 'throw' ? { status: 'dead-lettered', codes: ['ERR_TASK_FAILED'] }
  : o.kind === 'exit' ? { status: 'dead-lettered', codes: ['ERR_WORKER_EXITED', 'ERR_TIMEOUT'] }
  : { status: 'dead-lettered', codes: ['ERR_TIMEOUT'] };

describe('thread agents under random handler behaviour', () => {
  it('end every accepted task exactly once with the outcome its input calls for, whatever dies (seed printed on failure)', async () => {
    await checkProperty(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 24 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 8 }), async (ops, threads, concurrency) => {
        const system = createSystem({ logger: false });
        try {
          const pipe = system.spawnPipeline({
            name: 'p',
            stages: [agent({ name: 't', module: OPS, threads, concurrency, timeoutMs: 500, startTimeoutMs: 10_000, breaker: false, retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 1, jitter: 0 } } })],
          });
          const outcomes: Outcome[] = [];
          pipe.onOutcome((o) => outcomes.push(o));
          for (const [i, o] of ops.entries()) expect(await pipe.send(inputOf(o), { id: `t${i}` })).toBe('accepted');
          // A run that hangs must fail with what was left, not time the whole test out.
          let timer: NodeJS.Timeout | undefined;
          const stuck = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`not drained after 60 s: ${JSON.stringify(pipe.stats().stages.map((x) => ({ inFlight: x.inFlight, inbox: x.inbox, status: x.status })))}; ended ${outcomes.map((o) => o.id).join(',')}`)), 60_000);
          });
          try {
            await Promise.race([pipe.drain(), stuck]);
          } finally {
            clearTimeout(timer);
          }
          expect(outcomes.length).toBe(ops.length);
          expect(new Set(outcomes.map((o) => o.id)).size).toBe(ops.length);
          for (const [i, o] of ops.entries()) {
            const got = outcomes.find((x) => x.id === `t${i}`)!;
            const want = expected(o);
            if (want.status === 'completed') expect(got, `t${i} ${o.kind}`).toMatchObject({ status: 'completed', output: want.output });
            else {
              expect(got.status, `t${i} ${o.kind}`).toBe('dead-lettered');
              expect(want.codes, `t${i} ${o.kind}: ${JSON.stringify(got.errors.map((e) => e.error.code))}`).toContain(got.status === 'dead-lettered' ? got.error.code : '');
            }
          }
          expect(pipe.stats().status).toBe('running');
        } finally {
          await system.shutdown();
        }
      }),
      {
        numRuns: 10,
        extra: {
          // Found by this property (a soak, 1 run in ~150 under load; alone 2 of 3 replays failed): t0
          // throws, its retry waits behind t2's endless loop, is resent when that worker is killed, and
          // met the deadline of its first placement 4 ms into its run in the new worker (ERR_TIMEOUT).
          examples: [[[{ kind: 'throw' }, { kind: 'throw' }, { kind: 'loop' }, { kind: 'throw' }, { kind: 'n', n: 304 }], 2, 4]],
        },
      },
    );
  }, 300_000);
});
