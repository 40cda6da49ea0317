import { describe, expect, it } from 'vitest';
import { agent, BatonError, createSystem, isBatonError } from '../../system/index.js';
import { fixed, inFlightMeter, ofType, range, sleep } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

const never = <T>() => new Promise<T>(() => undefined);

describe('a run that outlives timeoutMs', () => {
  it('has its ctx.signal aborted with a BatonError ERR_TIMEOUT exactly when timeoutMs has passed', async () => {
    const { system, clock } = testSystem();
    const signals: AbortSignal[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', timeoutMs: 500, retry: { maxAttempts: 1 }, handle: (_x: number, ctx) => (signals.push(ctx.signal), never<number>()) })],
    });
    await pipe.send(1, { id: 't' });
    await settle();
    await clock.advance(499);
    expect(signals[0]!.aborted).toBe(false);
    await clock.advance(1);
    expect(signals[0]!.aborted).toBe(true);
    const reason: unknown = signals[0]!.reason;
    expect(reason).toBeInstanceOf(BatonError);
    expect(isBatonError(reason, 'ERR_TIMEOUT')).toBe(true);
    expect((reason as BatonError).message).toContain('timeoutMs');
  });

  it('is retried, and its late result is discarded: the task ends once, with the retry output, and goes downstream once', async () => {
    const { system, clock } = testSystem();
    const resolvers: ((v: string) => void)[] = [];
    const downstream: string[] = [];
    const pipe = system.spawnPipeline<number, string>({
      name: 'p',
      stages: [
        agent({
          name: 'slow',
          timeoutMs: 100,
          retry: { backoff: fixed(10) },
          handle: (_x: number, ctx) => (ctx.attempt === 1 ? new Promise<string>((r) => resolvers.push(r)) : Promise.resolve('fresh')),
        }),
        agent({ name: 'next', handle: (s: string) => (downstream.push(s), s) }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    resolvers[0]!('late');
    await settle();
    await clock.advance(1_000);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: 'completed', output: 'fresh', attempts: 1 });
    expect(outcomes[0]!.errors.map((e) => [e.stage, e.error.code])).toEqual([['slow', 'ERR_TIMEOUT']]);
    expect(downstream).toEqual(['fresh']);
    expect(pipe.stats().stages[1]!.received).toBe(1);
  });

  it('does not count a late rejection as a second failure', async () => {
    const { system, clock, events } = testSystem();
    const rejecters: ((e: Error) => void)[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          timeoutMs: 100,
          retry: { backoff: fixed(10) },
          handle: (x: number, ctx) => (ctx.attempt === 1 ? new Promise<number>((_r, rej) => rejecters.push(rej)) : x),
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(7);
    await drainOn(clock, pipe);
    rejecters[0]!(new Error('late failure'));
    await settle();
    expect(outcomes).toMatchObject([{ status: 'completed', output: 7 }]);
    expect(pipe.stats().stages[0]).toMatchObject({ failed: 1, completed: 1 });
    expect(ofType(events, 'crashed')).toHaveLength(1);
  });

  it('is dead-lettered with ERR_TIMEOUT when every attempt times out', async () => {
    const { system, clock } = testSystem();
    let runs = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', timeoutMs: 200, retry: { backoff: fixed(10) }, handle: () => (runs++, never<number>()) })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(runs).toBe(3);
    expect(outcomes).toMatchObject([{ status: 'dead-lettered', attempts: 3, error: { code: 'ERR_TIMEOUT' } }]);
    expect(outcomes[0]!.errors.map((e) => e.error.code)).toEqual(['ERR_TIMEOUT', 'ERR_TIMEOUT', 'ERR_TIMEOUT']);
    expect(outcomes[0]!.errors.map((e) => e.at)).toEqual([200, 410, 620]);
  });

  it('produces one outcome when the handler honours the signal and rejects with its reason', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          timeoutMs: 50,
          retry: { maxAttempts: 1 },
          handle: (_x: number, ctx) => new Promise<number>((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    await settle();
    expect(outcomes).toMatchObject([{ status: 'dead-lettered', error: { code: 'ERR_TIMEOUT' } }]);
    expect(pipe.stats().stages[0]!.failed).toBe(1);
  });

  it('restarts the worker with a fresh state from init', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    const gens: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          timeoutMs: 100,
          retry: { backoff: fixed(1) },
          init: () => ({ gen: ++inits }),
          handle: (x: number, ctx) => (gens.push(ctx.state.gen), ctx.attempt === 1 ? never<number>() : x),
        }),
      ],
    });
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(gens).toEqual([1, 2]);
  });

  it('does not hold up the other runs of a concurrent stage', async () => {
    const { system, clock } = testSystem();
    const done: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          concurrency: 2,
          timeoutMs: 10_000,
          retry: { maxAttempts: 1 },
          handle: async (x: number) => {
            if (x === 0) return never<number>();
            await sleep(clock, 10);
            done.push(x);
            return x;
          },
        }),
      ],
    });
    await pipe.sendMany(range(6));
    await settle();
    await clock.advance(100);
    expect(done).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('the timeout clock', () => {
  it('gives each run its own timeoutMs from when that run started', async () => {
    const { system, clock } = testSystem();
    const meter = inFlightMeter();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          concurrency: 2,
          timeoutMs: 500,
          retry: { maxAttempts: 1 },
          handle: async (x: number) => {
            meter.enter();
            await sleep(clock, 300 + 30 * x);
            meter.leave();
            return x;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(6));
    await drainOn(clock, pipe, 60_000, 10);
    expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill('completed'));
    expect(clock.now()).toBeGreaterThan(1_000);
    expect(meter.max).toBe(2);
  });

  it('is 60 s by default', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', retry: { backoff: fixed(1) }, handle: async (x: number, ctx) => (await sleep(clock, ctx.attempt === 1 ? 61_000 : 59_000), x) })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe, 600_000, 1_000);
    expect(outcomes).toMatchObject([{ status: 'completed', attempts: 2 }]);
    expect(outcomes[0]!.errors).toMatchObject([{ at: 60_000, error: { code: 'ERR_TIMEOUT' } }]);
  });

  it('never fires when timeoutMs is Infinity', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', timeoutMs: Infinity, handle: async (x: number) => (await sleep(clock, 10 * 3600_000), x) })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await settle();
    await clock.advance(10 * 3600_000);
    await settle();
    expect(outcomes).toMatchObject([{ status: 'completed', output: 1, errors: [] }]);
  });

  it('never times out a synchronous handler, however long it runs', async () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'busy',
          timeoutMs: 5,
          retry: { maxAttempts: 1 },
          handle: (x: number) => {
            const until = Date.now() + 30;
            while (Date.now() < until) {
              // a long synchronous computation
            }
            return x;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2]);
    await pipe.drain();
    expect(outcomes.map((o) => o.status)).toEqual(['completed', 'completed']);
    await system.shutdown();
  });
});

// A one-parameter async handler runs on the bare lane, where run records are reused once they
// settle well: a run that timed out or was taken back must never speak again through a reused record.
describe('a one-parameter async handler (the bare lane, whose run records are reused)', () => {
  it('discards the late result of a timed-out run while later runs reuse records: every task ends once, with its own output', async () => {
    const { system, clock } = testSystem();
    let release!: (v: number) => void;
    const calls = new Map<number, number>();
    const downstream: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'bare',
          timeoutMs: 100,
          concurrency: 2,
          retry: { backoff: fixed(10) },
          handle: (x: number) => {
            calls.set(x, (calls.get(x) ?? 0) + 1);
            if (x === 3 && calls.get(x) === 1) return new Promise<number>((r) => (release = r));
            return Promise.resolve(x * 10);
          },
        }),
        agent({ name: 'next', handle: (y: number) => (downstream.push(y), y) }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(8));
    await drainOn(clock, pipe);
    release(-1); // the first run of task 3, long timed out
    await settle();
    await pipe.sendMany([8, 9]); // runs on records freed by the others
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => o.output as number).sort((a, b) => a - b)).toEqual(range(10).map((x) => x * 10));
    expect(downstream.sort((a, b) => a - b)).toEqual(range(10).map((x) => x * 10));
    const three = outcomes.find((o) => o.output === 30)!;
    expect(three.errors.map((e) => e.error.code)).toEqual(['ERR_TIMEOUT']);
    expect(pipe.stats().stages[1]!.received).toBe(10);
  });

  it('discards the late result of a run taken back by a restart of its stage: the task runs again and ends once', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    let release!: (v: string) => void;
    let firstA = true;
    const downstream: string[] = [];
    const pipe = system.spawnPipeline<string, string>({
      name: 'p',
      stages: [
        agent({
          name: 'bare',
          concurrency: 2,
          breaker: false,
          retry: { maxAttempts: 1 },
          // The failure of 'bad' restarts the worker, whose init then fails once: past maxRestarts 0, the
          // stage escalates with 'a' in flight, and the pipeline restarts the stage.
          restart: { maxRestarts: 0 },
          init: () => {
            if (++inits === 2) throw new Error('init fails once');
          },
          handle: (x: string) => {
            if (x === 'bad') return Promise.reject(new Error('poison'));
            if (x === 'a' && firstA) {
              firstA = false;
              return new Promise<string>((r) => (release = r));
            }
            return Promise.resolve(`${x}!`);
          },
        }),
        agent({ name: 'next', handle: (s: string) => (downstream.push(s), s) }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send('a');
    await settle();
    await pipe.send('bad');
    await drainOn(clock, pipe);
    release('stale');
    await settle();
    await clock.advance(1_000);
    expect(pipe.stats().stages[0]!.restarts).toBeGreaterThanOrEqual(1);
    expect(outcomes.filter((o) => o.id.endsWith('-1'))).toMatchObject([{ status: 'completed', output: 'a!' }]);
    expect(outcomes.filter((o) => o.status === 'dead-lettered')).toHaveLength(1);
    expect(outcomes).toHaveLength(2);
    expect(downstream).toEqual(['a!']);
  });

  it('takes a non-native thenable that calls back twice as one result, also when its run record was reused in between', async () => {
    const { system, clock } = testSystem();
    const late: (() => void)[] = [];
    // Calls back at once, and again later (a broken thenable): the second call must not reach the task now on that record.
    const twice = (x: number): PromiseLike<number> => ({
      then(ok?: ((v: number) => unknown) | null) {
        queueMicrotask(() => ok?.(x + 1));
        late.push(() => ok?.(x + 100));
        return this as unknown as PromiseLike<never>;
      },
    });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const downstream: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({ name: 'bare', concurrency: 4, handle: (x: number) => (x < 6 ? twice(x) : gate.then(() => x + 1)) }),
        agent({ name: 'next', handle: (y: number) => (downstream.push(y), y) }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(6));
    await drainOn(clock, pipe);
    await pipe.sendMany([6, 7, 8, 9]); // running on the records the first six left
    await settle();
    for (const call of late) call();
    await settle();
    open();
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => o.output as number).sort((a, b) => a - b)).toEqual(range(10).map((x) => x + 1));
    expect(downstream.sort((a, b) => a - b)).toEqual(range(10).map((x) => x + 1));
  });

  it('fails the run, and keeps the runtime up, when a Promise subclass throws from then()', async () => {
    const { system, clock } = testSystem();
    class Broken<T> extends Promise<T> {
      override then(): never {
        throw new Error('then() is broken');
      }
    }
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'bare', retry: { maxAttempts: 1 }, breaker: false, handle: (x: number) => (x === 1 ? new Broken<number>(() => undefined) : Promise.resolve(x)) })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([0, 1, 2]);
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => [o.status, o.output ?? o.error?.message])).toEqual([
      ['completed', 0],
      ['dead-lettered', 'then() is broken'],
      ['completed', 2],
    ]);
  });

  // The two below were found by a reviewer: the pooled path once trusted every `instanceof Promise`.
  it('takes a Promise subclass whose then() calls back twice as one result, also when its record was reused in between', async () => {
    const { system, clock } = testSystem();
    const late: (() => void)[] = [];
    class Twice<T> extends Promise<T> {
      static override get [Symbol.species]() {
        return Promise;
      }
      override then<A = T, B = never>(ok?: ((v: T) => A | PromiseLike<A>) | null, bad?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
        const r = super.then(ok, bad);
        late.push(() => void ok?.(-1 as T));
        return r;
      }
    }
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'bare', concurrency: 4, handle: (x: number) => (x < 4 ? Twice.resolve(x + 1) : gate.then(() => x + 1)) })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(4));
    await drainOn(clock, pipe);
    await pipe.sendMany([4, 5, 6, 7]); // running on the records the first four left
    await settle();
    for (const call of late) call();
    await settle();
    open();
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => o.output as number).sort((a, b) => a - b)).toEqual(range(8).map((x) => x + 1));
  });

  it('does not charge the next task on a reused record with the error of a then() that called back and then threw', async () => {
    const { system, clock } = testSystem();
    class Eager<T> extends Promise<T> {
      static override get [Symbol.species]() {
        return Promise;
      }
      override then(ok?: ((v: T) => unknown) | null): never {
        ok?.(100 as T);
        throw new Error('then() threw after calling back');
      }
    }
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'bare', retry: { maxAttempts: 1 }, breaker: false, handle: (x: number) => (x === 0 ? new Eager<number>(() => undefined) : Promise.resolve(x)) })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([0, 1]);
    await drainOn(clock, pipe);
    // As `await` makes it: the first call back wins for task 0; task 1 is untouched.
    expect(outcomes.map((o) => [o.status, o.output ?? o.error?.message])).toEqual([
      ['completed', 100],
      ['completed', 1],
    ]);
  });
});
