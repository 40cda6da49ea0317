import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { actor, agent, oneForAll, type DeadLetter, type Outcome, type SimulatedClock } from '../../system/index.js';
import { checkProperty } from '../../testkit/property.js';
import { collect, settle, testSystem } from '../support/helpers.js';

/**
 * Races between restarts and new work, with fast-check's scheduler deciding the interleaving: every
 * promise a handler, an init or a receive returns is held by `s.schedule(...)` until the scheduler
 * releases it, and so is every send. The driver below releases one scheduled task at a time, lets
 * the runtime's dispatcher (microtasks and setImmediate) run in between, and moves simulated time
 * only when nothing else can happen (restart backoffs are timers).
 */
async function drive(s: fc.Scheduler, clock: SimulatedClock, label: () => string): Promise<void> {
  for (let step = 0; step < 20_000; step++) {
    await settle(3);
    if (s.count() > 0) {
      await s.waitNext(1);
      continue;
    }
    const at = clock.nextAt();
    if (at === undefined) return; // quiescent: nothing scheduled, no timer
    await clock.advance(Math.max(0, at - clock.now()));
  }
  throw new Error(`the race did not settle after 20,000 steps: ${label()}`);
}

const keys = ['a', 'b', 'c'] as const;

describe('a pipeline stage restarting while tasks are sent', () => {
  const scenario = fc.record({
    tasks: fc.array(fc.option(fc.constantFrom(...keys), { nil: undefined, freq: 4 }), { minLength: 1, maxLength: 10 }),
    /** By handler call number: true fails that run (a scheduled rejection or a synchronous throw). */
    fails: fc.array(fc.constantFrom('ok', 'ok', 'reject', 'throw'), { maxLength: 30 }),
    /** By init call number: true rejects that init (the stage waits out its restart backoff, a timer). */
    initFails: fc.array(fc.boolean(), { maxLength: 6 }),
    concurrency: fc.integer({ min: 1, max: 4 }),
    orderByKey: fc.boolean(),
    capacity: fc.integer({ min: 1, max: 6 }),
    maxAttempts: fc.integer({ min: 1, max: 4 }),
    /** Restarts of the worker before the stage escalates to its pipeline (which restarts the stage, 3 times at most). */
    maxRestarts: fc.integer({ min: 0, max: 12 }),
  });

  it('gives every accepted task exactly one outcome, and completes the tasks of one key in the order sent at an ordered stage', async () => {
    await checkProperty(
      fc.asyncProperty(fc.scheduler(), scenario, async (s, sc) => {
        const { system, clock } = testSystem();
        let calls = 0;
        let inits = 0;
        /** Runs that started and have not ended, per key: an ordered stage runs one task per key at a time. */
        const live = new Map<string, { id: string; signal: AbortSignal }[]>();
        const overlaps: string[] = [];
        const pipe = system.spawnPipeline<{ i: number }, { i: number }>({
          name: 'p',
          stages: [
            agent<{ i: number }, { i: number }, { inc: number }>({
              name: 'stage',
              init: () => {
                const n = inits++;
                return s.schedule(Promise.resolve(), `init #${n}`).then(() => {
                  if (sc.initFails[n] === true) throw new Error(`init #${n} fails`);
                  return { inc: n };
                });
              },
              handle: (input, ctx) => {
                const n = calls++;
                const plan = sc.fails[n] ?? 'ok';
                if (plan === 'throw') throw new Error(`run #${n} of ${ctx.taskId} throws`);
                const key = ctx.key;
                const me = { id: ctx.taskId, signal: ctx.signal };
                if (key !== undefined && sc.orderByKey) {
                  const others = (live.get(key) ?? []).filter((r) => !r.signal.aborted);
                  if (others.length > 0) overlaps.push(`${ctx.taskId} started while ${others.map((r) => r.id).join(', ')} ran with key ${key}`);
                  live.set(key, [...(live.get(key) ?? []), me]);
                }
                const end = () => key !== undefined && live.set(key, (live.get(key) ?? []).filter((r) => r !== me));
                return s.schedule(Promise.resolve(), `run #${n} of ${ctx.taskId} (attempt ${ctx.attempt})`).then(() => {
                  end();
                  if (plan === 'reject') throw new Error(`run #${n} of ${ctx.taskId} rejects`);
                  return input;
                });
              },
            }),
          ],
          defaults: {
            concurrency: sc.concurrency,
            orderByKey: sc.orderByKey,
            mailbox: { capacity: sc.capacity },
            timeoutMs: Infinity,
            breaker: false,
            retry: { maxAttempts: sc.maxAttempts, backoff: { minMs: 0, maxMs: 0 } },
            restart: { maxRestarts: sc.maxRestarts, backoff: { minMs: 5, maxMs: 5, jitter: 0 } },
          },
        });
        const outcomes: Outcome<{ i: number }>[] = collect(pipe);
        const sent: { id: string; key: string | undefined; result: string }[] = [];
        let sending = true;
        const sender = (async () => {
          for (const [i, key] of sc.tasks.entries()) {
            await s.schedule(Promise.resolve(), `send t${i}`);
            const id = `t${i}`;
            const result = await pipe.send({ i }, key === undefined ? { id } : { id, key }).catch((e: { code?: string }) => String(e.code));
            sent.push({ id, key, result });
          }
          sending = false;
        })();
        await drive(s, clock, () => JSON.stringify({ sending, stats: pipe.stats() }));
        await sender;
        expect(sending).toBe(false);

        const failed = pipe.stats().status === 'failed';
        const accepted = sent.filter((t) => t.result === 'accepted');
        // Only a failed pipeline refuses a send (ERR_STOPPED); otherwise every send is accepted.
        for (const t of sent) expect([failed ? 'ERR_STOPPED' : 'accepted', 'accepted']).toContain(t.result);
        // Exactly one outcome per accepted task, none for anything else.
        const ids = outcomes.map((o) => o.id).sort();
        expect(ids).toEqual(accepted.map((t) => t.id).sort());
        expect(pipe.stats()).toMatchObject({ pending: 0 });
        for (const o of outcomes) {
          if (o.status === 'completed') expect(o.output).toEqual({ i: Number(o.id.slice(1)) });
          else if (!failed) expect(o).toMatchObject({ error: { code: 'ERR_TASK_FAILED' }, attempts: sc.maxAttempts });
        }
        if (sc.orderByKey) {
          for (const k of keys) {
            const done = outcomes.filter((o) => o.key === k && o.status === 'completed').map((o) => Number(o.id.slice(1)));
            expect(done, `completion order of key ${k}`).toEqual([...done].sort((x, y) => x - y));
          }
          expect(overlaps, 'runs of one key at once').toEqual([]);
        }
        await system.shutdown({ drainMs: 0 });
      }),
      { numRuns: 150 },
    );
  }, 30_000);
});

describe('a supervised plain actor restarting while messages are sent', () => {
  type Plan = 'ok' | 'ok-sync' | 'reject' | 'throw';
  const scenario = fc.record({
    /** What the test does, in order, each step at a moment the scheduler picks: message n to the worker, or a poke that crashes its sibling. */
    ops: fc.array(fc.constantFrom<'send' | 'poke'>('send', 'send', 'send', 'poke'), { minLength: 1, maxLength: 14 }),
    /** By receive call number: how that receive ends. */
    plans: fc.array(fc.constantFrom<Plan>('ok', 'ok', 'ok-sync', 'reject', 'throw'), { maxLength: 30 }),
    /** The supervisor's restart delay: 0 restarts at once, more makes a window in which messages arrive while it is down. */
    backoffMs: fc.constantFrom(0, 5),
  });

  it('gets every message it did not fail on exactly once, in send order, and dead-letters each one its receive failed on', async () => {
    await checkProperty(
      fc.asyncProperty(fc.scheduler(), scenario, async (s, sc) => {
        const { system, clock } = testSystem();
        // Under one-for-all, any crash in the tree suspends the worker: a receive still running then is
        // discarded (its message goes back to the mailbox). A crash event comes just before that suspend.
        let epoch = 0;
        system.events.on((e) => {
          if (e.type === 'crashed' && e.path.startsWith('sup/')) epoch++;
        });
        const dead: DeadLetter[] = [];
        system.deadLetters.on((d) => dead.push(d));
        let calls = 0;
        /** Receives whose result the actor kept (not discarded by a restart), in the order they ended. */
        const got: number[] = [];
        /** Messages whose receive failed in a run that counted. */
        const failedOn: number[] = [];
        /**
         * A thenable that tells the actor the result in the same synchronous step as it records it, so
         * whether the run was discarded (the epoch moved since it started) is read at the moment the
         * actor decides.
         */
        const held = (p: Promise<void>, m: number, plan: Plan, startEpoch: number): PromiseLike<void> => ({
          then(ok?: ((v: void) => unknown) | null, fail?: ((e: unknown) => unknown) | null) {
            p.then(() => {
              const stale = epoch !== startEpoch;
              if (plan === 'reject') {
                if (!stale) failedOn.push(m);
                fail?.(new Error(`receive of ${m} rejects`));
              } else {
                if (!stale) got.push(m);
                ok?.(undefined);
              }
            });
            return this as PromiseLike<never>; // the actor calls then once and ignores what it returns
          },
        });
        const worker = actor<number, { inc: number }>({
          init: () => ({ inc: 0 }),
          receive: (_state, m) => {
            const plan = sc.plans[calls++] ?? 'ok';
            if (plan === 'throw') {
              failedOn.push(m);
              throw new Error(`receive of ${m} throws`);
            }
            if (plan === 'ok-sync') {
              got.push(m);
              return undefined;
            }
            return held(s.schedule(Promise.resolve(), `receive ${m} (${plan})`), m, plan, epoch);
          },
        });
        const sibling = actor<string, undefined>({
          receive: (_state, m) => s.schedule(Promise.resolve(), `sibling ${m}`).then(() => Promise.reject(new Error(`sibling crashes on ${m}`))),
        });
        const sup = system.spawnSupervisor({
          name: 'sup',
          strategy: oneForAll({ maxRestarts: 10_000, withinMs: 60_000, backoff: { minMs: sc.backoffMs, maxMs: sc.backoffMs, jitter: 0 } }),
          children: [
            { name: 'worker', actor: worker },
            { name: 'sibling', actor: sibling },
          ],
        });
        const toWorker = sup.child<number>('worker');
        const toSibling = sup.child<string>('sibling');
        const sent: number[] = [];
        let sending = true;
        const sender = (async () => {
          let n = 0;
          let p = 0;
          for (const op of sc.ops) {
            if (op === 'send') {
              const m = n++;
              await s.schedule(Promise.resolve(), `tell ${m}`);
              expect(toWorker.tell(m)).toBe('enqueued');
              sent.push(m);
            } else {
              const m = `poke ${p++}`;
              await s.schedule(Promise.resolve(), m);
              expect(toSibling.tell(m)).toBe('enqueued');
            }
          }
          sending = false;
        })();
        await drive(s, clock, () => JSON.stringify({ sending, got, failedOn }));
        await sender;
        expect(sending).toBe(false);

        // What the actor promises: the message a receive failed on goes to dead letters ('crashed') and
        // is not run again; every other message is received, once, in send order, restarts or not.
        expect(got).toEqual(sent.filter((m) => !failedOn.includes(m)));
        expect(new Set(failedOn).size).toBe(failedOn.length);
        const workerDead = dead.filter((d) => d.to === 'sup/worker');
        expect(workerDead.map((d) => [d.reason, d.message])).toEqual(failedOn.map((m) => ['crashed', m]));
        await system.shutdown();
      }),
      { numRuns: 120 },
    );
  }, 30_000);
});

describe('an unsupervised plain actor (system.spawn) whose receive fails while messages are sent', () => {
  type Plan = 'ok' | 'ok-sync' | 'reject' | 'throw';
  const scenario = fc.record({
    messages: fc.integer({ min: 1, max: 10 }),
    plans: fc.array(fc.constantFrom<Plan>('ok', 'ok', 'ok-sync', 'reject', 'throw'), { maxLength: 12 }),
  });

  it('receives the messages before the failure in send order, dead-letters the failed one as crashed and every later one as stopped, each exactly once', async () => {
    await checkProperty(
      fc.asyncProperty(fc.scheduler(), scenario, async (s, sc) => {
        const { system, clock } = testSystem();
        const dead: DeadLetter[] = [];
        system.deadLetters.on((d) => dead.push(d));
        const got: number[] = [];
        let failedOn: number | undefined;
        let calls = 0;
        const ref = system.spawn(
          actor<number, undefined>({
            receive: (_state, m) => {
              const plan = sc.plans[calls++] ?? 'ok';
              if (plan === 'throw') {
                failedOn = m;
                throw new Error(`receive of ${m} throws`);
              }
              if (plan === 'ok-sync') {
                got.push(m);
                return undefined;
              }
              return s.schedule(Promise.resolve(), `receive ${m} (${plan})`).then(() => {
                if (plan === 'reject') {
                  failedOn = m;
                  throw new Error(`receive of ${m} rejects`);
                }
                got.push(m);
              });
            },
          }),
          { name: 'solo' },
        );
        const deliveries: string[] = [];
        const sender = (async () => {
          for (let m = 0; m < sc.messages; m++) {
            await s.schedule(Promise.resolve(), `tell ${m}`);
            deliveries.push(ref.tell(m));
          }
        })();
        await drive(s, clock, () => JSON.stringify({ got, failedOn, deliveries }));
        await sender;

        const sent = [...Array(sc.messages).keys()];
        if (failedOn === undefined) {
          expect(got).toEqual(sent);
          expect(dead).toEqual([]);
        } else {
          // Without a supervisor a crash ends the actor: nothing after the failed message is received.
          expect(got).toEqual(sent.slice(0, failedOn));
          expect(dead.map((d) => [d.reason, d.message])).toEqual([['crashed', failedOn], ...sent.slice(failedOn + 1).map((m) => ['stopped', m])]);
          expect(deliveries.every((d) => d === 'enqueued' || d === 'stopped')).toBe(true);
        }
        await system.shutdown();
      }),
      { numRuns: 30 },
    );
  });
});
