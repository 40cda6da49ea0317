import { AsyncLocalStorage } from 'node:async_hooks';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BatonError, CircuitOpenError, simulatedClock, supervise, type SimulatedClock, type SupervisedDeadLetter } from '../../system/index.js';
import { expectBatonError } from '../support/assertions.js';

const fixed = (ms: number) => ({ minMs: ms, maxMs: ms, factor: 1, jitter: 0 });

/** Runs `p` to its end while moving simulated time in steps. */
async function settleOn<T>(clock: SimulatedClock, p: Promise<T>, stepMs = 10, limitMs = 600_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; t < limitMs && !done; t += stepMs) await clock.advance(stepMs);
  return p;
}

const caught = (p: Promise<unknown>): Promise<unknown> => p.then(
  (v) => ({ resolved: v }),
  (e: unknown) => e,
);

/** A task that fails its first `times` calls (with `error()`), then doubles its input. */
function failing(times: number, error: () => unknown = () => new Error('flaky')) {
  let calls = 0;
  const fn = async (x: number) => {
    calls++;
    if (calls <= times) throw error();
    return x * 2;
  };
  return { fn, calls: () => calls };
}

/** A task whose dependency is up or down, counting its runs. */
function dependent() {
  const t = { down: true, calls: 0, fn: async (x: number) => x };
  t.fn = async (x: number) => {
    t.calls++;
    if (t.down) throw new Error('database down');
    return x;
  };
  return t;
}

const named = (name: string, extra: object = {}) => Object.assign(new Error(name), { name }, extra);

describe('supervise: retries and dead letters', () => {
  it('retries a transient failure after the retry backoff and returns the result', async () => {
    const clock = simulatedClock();
    const at: number[] = [];
    const t = failing(2);
    const f = supervise(async (x: number) => (at.push(clock.now()), t.fn(x)), { clock, logger: false, retry: { backoff: fixed(100) } });
    await expect(settleOn(clock, f(21))).resolves.toBe(42);
    expect(at).toEqual([0, 100, 200]);
  });

  it("uses the agent's defaults: 3 attempts, 100 ms then 200 ms (±20%) between them", async () => {
    const clock = simulatedClock();
    const at: number[] = [];
    const f = supervise(async () => (at.push(clock.now()), Promise.reject(new Error('no'))), { clock, random: 7, logger: false });
    await expect(settleOn(clock, f(1), 1)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    expect(at).toHaveLength(3);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(80);
    expect(at[1]! - at[0]!).toBeLessThanOrEqual(121);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(160);
    expect(at[2]! - at[1]!).toBeLessThanOrEqual(241);
  });

  it('draws the jitter from the injected random source', async () => {
    const clock = simulatedClock();
    const at: number[] = [];
    const t = failing(2);
    // random() = 0 takes the low end of ±20%: 100 ms -> 80 ms, 200 ms -> 160 ms.
    const f = supervise(async (x: number) => (at.push(clock.now()), t.fn(x)), { clock, random: () => 0, logger: false, retry: { backoff: { minMs: 100, factor: 2, jitter: 0.2 } } });
    await expect(settleOn(clock, f(1), 1)).resolves.toBe(2);
    expect(at).toEqual([0, 80, 240]);
  });

  it('dead-letters an input that fails every attempt: the sink gets its history and the call rejects with ERR_TASK_FAILED naming the input', async () => {
    const clock = simulatedClock();
    const dead: SupervisedDeadLetter<number>[] = [];
    const f = supervise(failing(99).fn, { name: 'summarise', clock, logger: false, retry: { maxAttempts: 3, backoff: fixed(10) }, onDeadLetter: (d) => dead.push(d) });
    const err = await caught(settleOn(clock, f(1)));
    expect(err).toBeInstanceOf(BatonError);
    expect(err).toMatchObject({ code: 'ERR_TASK_FAILED', details: { task: 'summarise', input: 1, attempts: 3 } });
    expect((err as Error).message).toContain("'summarise' gave up on input 1: every one of 3 attempt(s) failed; last error: flaky");
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ name: 'summarise', input: 1, attempts: 3, error: err });
    expect(dead[0]!.errors.map((e) => [e.attempt, e.at, e.charged, e.error.message])).toEqual([
      [1, 0, true, 'flaky'],
      [2, 10, true, 'flaky'],
      [3, 20, true, 'flaky'],
    ]);
  });

  it('returns deadLetterValue in place of a dead-lettered input, so the graph can go on', async () => {
    const clock = simulatedClock();
    const f = supervise(failing(99).fn, { clock, logger: false, retry: { maxAttempts: 2, backoff: fixed(1) }, deadLetterValue: (x, e) => -x - (e.code === 'ERR_TASK_FAILED' ? 1000 : 0) });
    await expect(settleOn(clock, f(5))).resolves.toBe(-1005);
  });

  it('contains an onDeadLetter sink that throws: the call still answers with deadLetterValue', async () => {
    const clock = simulatedClock();
    const f = supervise(failing(99).fn, {
      clock,
      logger: false,
      retry: { maxAttempts: 1 },
      onDeadLetter: () => {
        throw new Error('sink is broken');
      },
      deadLetterValue: () => 0,
    });
    await expect(f(5)).resolves.toBe(0);
  });

  it('times out an attempt that never settles, aborts its signal with ERR_TIMEOUT, and retries', async () => {
    const clock = simulatedClock();
    const signals: AbortSignal[] = [];
    let calls = 0;
    const f = supervise(
      (x: number, ctx: { signal: AbortSignal }) => {
        calls++;
        signals.push(ctx.signal);
        return calls === 1 ? new Promise<number>(() => undefined) : Promise.resolve(x);
      },
      { clock, logger: false, timeoutMs: 500, retry: { backoff: fixed(10) } },
    );
    await expect(settleOn(clock, f(7))).resolves.toBe(7);
    expect(calls).toBe(2);
    expect(signals[0]!.aborted).toBe(true);
    expect((signals[0]!.reason as BatonError).code).toBe('ERR_TIMEOUT');
    expect(signals[1]!.aborted).toBe(false);
  });

  it("drops a timed-out attempt's late result, and a task that answers the abort with its own AbortError is still retried as a timeout", async () => {
    const clock = simulatedClock();
    let calls = 0;
    const f = supervise(
      (_x: number, ctx: { signal: AbortSignal }) => {
        calls++;
        if (calls === 1) return new Promise<string>((resolve) => clock.setTimer(900, () => resolve('late')));
        // Rejects the moment the signal fires, as fetch does.
        return new Promise<string>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
      },
      { clock, logger: false, timeoutMs: 500, retry: { maxAttempts: 2, backoff: fixed(10) } },
    );
    const err = await caught(settleOn(clock, f(1)));
    expect(err).toMatchObject({ code: 'ERR_TASK_FAILED' });
    expect((err as BatonError).details['errors']).toMatchObject([{ error: { code: 'ERR_TIMEOUT' } }, { error: { code: 'ERR_TIMEOUT' } }]);
    expect(calls).toBe(2);
  });
});

describe('supervise: classify', () => {
  it("dead-letters at once what classify calls 'fail', without feeding the breaker", async () => {
    const clock = simulatedClock();
    class Fatal extends Error {}
    const seen: unknown[] = [];
    const t = failing(99, () => new Fatal('bad input'));
    const f = supervise(t.fn, { clock, logger: false, breaker: { threshold: 1 }, classify: (e) => (seen.push(e), e instanceof Fatal ? 'fail' : 'retry') });
    for (const x of [1, 2, 3]) {
      const err = await caught(f(x));
      expect(err).toMatchObject({ code: 'ERR_TASK_FAILED' });
      expect((err as Error).message).toContain("classify called attempt 1's error 'fail'");
    }
    expect(t.calls(), 'one attempt per input, and a threshold of 1 never opened').toBe(3);
    expect(seen[0]).toBeInstanceOf(Fatal);
  });

  it("rethrows untouched what classify calls 'rethrow', runs it once, and leaves the breaker alone", async () => {
    const clock = simulatedClock();
    const original = new Error('the caller handles this');
    const t = failing(99, () => original);
    const f = supervise(t.fn, { clock, logger: false, breaker: { threshold: 1 }, classify: () => 'rethrow' });
    for (const x of [1, 2, 3]) await expect(f(x)).rejects.toBe(original);
    expect(t.calls()).toBe(3);
  });

  it.each([
    ['throws', () => { throw new Error('oops'); }, 'threw (oops)'],
    ['returns something else', () => 'maybe', 'returned "maybe"'],
  ])('rejects with ERR_INVALID_OPTION naming classify when classify %s, keeping the original error as the cause', async (_what, classify, said) => {
    const original = new Error('model error');
    const f = supervise(failing(99, () => original).fn, { name: 'summarise', logger: false, classify: classify as never });
    const err = (await caught(f(1))) as BatonError;
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toContain('summarise.classify');
    expect(err.message).toContain(said);
    expect(err.cause).toBe(original);
  });
});

describe('supervise: control flow and aborts', () => {
  class BubbleUp extends Error {
    // As LangGraph's GraphBubbleUp: a getter on the prototype, not an own property.
    get is_bubble_up() {
      return true;
    }
  }
  it.each([
    ['a GraphInterrupt', named('GraphInterrupt')],
    ['a NodeInterrupt', named('NodeInterrupt')],
    ['a ParentCommand', named('ParentCommand')],
    ['a GraphDrained', named('GraphDrained')],
    ['an error whose class has an is_bubble_up getter', new BubbleUp('bubble')],
    ['an error with a truthy is_bubble_up', Object.assign(new Error('bubble'), { is_bubble_up: 1 })],
    ['an AbortError', named('AbortError')],
  ])('rethrows %s untouched, runs it once, and never lets it open the breaker', async (_what, signal) => {
    const clock = simulatedClock();
    let calls = 0;
    const f = supervise(
      async () => {
        calls++;
        throw signal;
      },
      { clock, logger: false, breaker: { threshold: 2 } },
    );
    for (let i = 0; i < 5; i++) await expect(f(i)).rejects.toBe(signal);
    expect(calls).toBe(5);
  });

  it('neither counts nor clears the fresh-failure streak with an interrupt between two failures', async () => {
    const clock = simulatedClock();
    const script: unknown[] = [new Error('down'), named('GraphInterrupt'), new Error('down')];
    const f = supervise(
      async () => {
        throw script.shift();
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 2 } },
    );
    await expect(f(1)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    await expect(f(2)).rejects.toMatchObject({ name: 'GraphInterrupt' });
    await expect(f(3), 'the second failure in the streak opens the breaker').rejects.toBeInstanceOf(CircuitOpenError);
  });

  it("aborts the running attempt when the caller's signal fires: the task sees the reason and the call rejects with it, not retried", async () => {
    const clock = simulatedClock();
    const seen: unknown[] = [];
    let calls = 0;
    const f = supervise(
      (_x: number, ctx: { signal: AbortSignal }) =>
        new Promise<number>((_, reject) => {
          calls++;
          ctx.signal.addEventListener('abort', () => (seen.push(ctx.signal.reason), reject(new Error('cleanup done'))));
        }),
      { clock, logger: false, retry: { backoff: fixed(1) } },
    );
    const controller = new AbortController();
    const reason = new Error('user closed the tab');
    const p = caught(f(1, { signal: controller.signal }));
    await clock.advance(5);
    controller.abort(reason);
    expect(await p).toBe(reason);
    await clock.advance(1_000);
    expect(seen).toEqual([reason]);
    expect(calls).toBe(1);
  });

  it("does not run the task for a caller whose signal has already aborted", async () => {
    let calls = 0;
    const f = supervise(async () => ++calls, { logger: false });
    const reason = new Error('gone');
    await expect(f(1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(calls).toBe(0);
  });

  it("ends a backoff wait early when the caller's signal aborts, with the abort's reason", async () => {
    const clock = simulatedClock();
    const t = failing(99);
    const f = supervise(t.fn, { clock, logger: false, retry: { backoff: fixed(60_000) } });
    const controller = new AbortController();
    const p = f(1, { signal: controller.signal });
    await clock.advance(10);
    controller.abort(new Error('user cancelled'));
    await expect(p).rejects.toThrow('user cancelled');
    expect(t.calls()).toBe(1);
    expect(clock.now()).toBeLessThan(60_000);
    expect(clock.pending(), 'the backoff timer was cancelled').toBe(0);
  });

  it('lets the next call probe at once when the probe ends in an interrupt (no evidence either way)', async () => {
    const clock = simulatedClock();
    let mode: 'down' | 'interrupt' | 'up' = 'down';
    const f = supervise(
      async (x: number) => {
        if (mode === 'down') throw new Error('down');
        if (mode === 'interrupt') throw named('GraphInterrupt');
        return x;
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 1, backoff: fixed(1_000) } },
    );
    await expect(f(1)).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(1_000);
    mode = 'interrupt';
    await expect(f(2)).rejects.toMatchObject({ name: 'GraphInterrupt' });
    mode = 'up';
    await expect(f(3), 'probes now, not after another 1,000 ms').resolves.toBe(3);
  });

  it("does not close the breaker when the probe's error is one classify says to rethrow: the next call is the probe", async () => {
    const clock = simulatedClock();
    const script = ['down', 'down', 'not found', 'down'];
    const f = supervise(
      async (_x: number) => {
        throw new Error(script.shift());
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 2, backoff: fixed(1_000) }, classify: (e) => ((e as Error).message === 'not found' ? 'rethrow' : 'retry') },
    );
    await caught(f(1));
    await expect(f(2)).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(1_000);
    await expect(f(3)).rejects.toThrow('not found');
    // Closed, this fresh failure would start a new streak and be dead-lettered; as the probe it re-opens the breaker.
    await expect(f(4)).rejects.toBeInstanceOf(CircuitOpenError);
  });
});

describe('supervise: the poison/outage breaker', () => {
  it('opens on an outage: later calls throw CircuitOpenError without running, a probe after the backoff closes it', async () => {
    const clock = simulatedClock();
    const dep = dependent();
    const f = supervise(dep.fn, { clock, logger: false, breaker: { threshold: 3, backoff: fixed(1_000) }, retry: { maxAttempts: 5, backoff: fixed(10) } });
    const results = await Promise.all([1, 2, 3].map((x) => caught(settleOn(clock, f(x)))));
    expect(results.every((r) => r instanceof CircuitOpenError), 'the calls that met the outage are held, not dead-lettered').toBe(true);
    // Inputs 1 and 2 failed fresh and were refused on their retry; input 3's failure opened the breaker.
    expect(results.map((r) => (r as CircuitOpenError).cause)).toEqual([undefined, undefined, expect.objectContaining({ message: 'database down' })]);
    const before = dep.calls;
    const refused = (await caught(f(4))) as CircuitOpenError;
    expect(refused).toBeInstanceOf(BatonError);
    expect(refused.code).toBe('ERR_CIRCUIT_OPEN');
    expect(refused.retryInMs).toBeGreaterThan(0);
    expect(refused.retryInMs).toBeLessThanOrEqual(1_000);
    expect(refused.message).toContain('the call did not run');
    expect(dep.calls, 'an open breaker runs nothing').toBe(before);
    dep.down = false;
    await clock.advance(1_000);
    await expect(f(5)).resolves.toBe(5);
    await expect(f(6)).resolves.toBe(6);
  });

  it('does not charge the failure that opens the breaker: with one attempt, the first input is dead-lettered, the one that opened it is held', async () => {
    const clock = simulatedClock();
    const dead: number[] = [];
    const f = supervise(
      async (_x: number) => {
        throw new Error('database down');
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 2 }, onDeadLetter: (d) => dead.push(d.input) },
    );
    await expect(f(1)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    await expect(f(2)).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(f(3)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(dead).toEqual([1]);
  });

  it('holds longer after each failed probe: 1,000 ms, then 2,000 ms, then 4,000 ms', async () => {
    const clock = simulatedClock();
    const dep = dependent();
    const f = supervise(dep.fn, { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 1, backoff: { minMs: 1_000, factor: 2, jitter: 0 } } });
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const err = (await caught(f(i))) as CircuitOpenError;
      waits.push(err.retryInMs);
      await clock.advance(err.retryInMs);
    }
    expect(waits).toEqual([1_000, 2_000, 4_000]);
    expect(dep.calls, 'every call was a probe or the opener; none was refused').toBe(3);
  });

  it('refuses other calls while the probe runs, and the probe closes the breaker', async () => {
    const clock = simulatedClock();
    let down = true;
    let calls = 0;
    const f = supervise(
      async (x: number) => {
        calls++;
        if (down) throw new Error('down');
        await new Promise<void>((r) => clock.setTimer(50, r));
        return x;
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 1, backoff: fixed(100) } },
    );
    await expect(f(0)).rejects.toBeInstanceOf(CircuitOpenError);
    await clock.advance(100);
    down = false;
    const probe = f(1);
    await expect(f(2)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls, 'only the opener and the probe ran').toBe(2);
    await expect(settleOn(clock, probe)).resolves.toBe(1);
    await expect(settleOn(clock, f(3))).resolves.toBe(3);
  });

  it('does not close the breaker on the success of a call that started before the outage', async () => {
    const clock = simulatedClock();
    const f = supervise(
      async (x: number) => {
        if (x === 0) return new Promise<number>((r) => clock.setTimer(100, () => r(0))); // slow, started while all was well
        throw new Error('down');
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: { threshold: 2, backoff: fixed(1_000) } },
    );
    const slow = f(0);
    await expect(f(1)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    await expect(f(2)).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(settleOn(clock, slow)).resolves.toBe(0);
    await expect(f(3), 'still open: only a probe may close it').rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('charges a retried input that fails as the probe, and probes again at once instead of holding forever', async () => {
    const clock = simulatedClock();
    let healthy = false;
    const f = supervise(
      async (x: number) => {
        if (x === 13 || !healthy) throw new Error(x === 13 ? 'poison' : 'down');
        return x;
      },
      { clock, logger: false, retry: { maxAttempts: 3, backoff: fixed(2_000) }, breaker: { threshold: 2, backoff: fixed(1_000) } },
    );
    const poison = caught(f(13)); // t=0: fresh failure (charged, streak 1); its retry is due at 2,000
    await expect(f(1)).rejects.toBeInstanceOf(CircuitOpenError); // t=0: streak 2, open until 1,000
    healthy = true;
    await clock.advance(2_000); // the poison's retry is the first call after 1,000: the probe. It fails, charged.
    await expect(f(2), 'the next call probes at once and closes the breaker').resolves.toBe(2);
    await clock.advance(2_000);
    expect(await poison).toMatchObject({ code: 'ERR_TASK_FAILED', details: { attempts: 3 } });
  });

  it('charges failed probes once the breaker has held maxHoldMs, so inputs are dead-lettered instead of held forever', async () => {
    const clock = simulatedClock();
    const run = async (maxHoldMs: number) => {
      const f = supervise(
        async (_x: number) => {
          throw new Error('down');
        },
        { clock, logger: false, retry: { maxAttempts: 2, backoff: fixed(10) }, breaker: { threshold: 1, backoff: fixed(100), maxHoldMs } },
      );
      await caught(f(0)); // opens
      await clock.advance(100);
      return caught(settleOn(clock, f(1)));
    };
    expect(await run(Infinity)).toBeInstanceOf(CircuitOpenError);
    expect(await run(50)).toMatchObject({ code: 'ERR_TASK_FAILED', details: { attempts: 2 } });
  });

  it('never opens with breaker: false: every input is dead-lettered on its own', async () => {
    const dep = dependent();
    const f = supervise(dep.fn, { logger: false, retry: { maxAttempts: 1 }, breaker: false });
    for (let i = 0; i < 8; i++) await expect(f(i)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    expect(dep.calls).toBe(8);
  });
});

describe('supervise: create() and restart intensity', () => {
  it('rebuilds a { create } task after every failure, so each retry gets fresh state, and keeps it after a success', async () => {
    const clock = simulatedClock();
    let creates = 0;
    const f = supervise(
      {
        create: async () => {
          const id = ++creates;
          return async (x: number) => {
            if (id < 3) throw new Error(`instance ${id} is broken`);
            return x + id;
          };
        },
      },
      { clock, logger: false, retry: { backoff: fixed(1) } },
    );
    await expect(settleOn(clock, f(10))).resolves.toBe(13);
    await expect(f(10)).resolves.toBe(13);
    expect(creates).toBe(3);
  });

  it('builds one instance for calls that arrive together', async () => {
    let creates = 0;
    const f = supervise({ create: async () => (creates++, async (x: number) => x) }, { logger: false });
    await expect(Promise.all([f(1), f(2), f(3)])).resolves.toEqual([1, 2, 3]);
    expect(creates).toBe(1);
  });

  it('runs create() again after the restart backoff when it throws, without charging the input', async () => {
    const clock = simulatedClock();
    const at: number[] = [];
    let runs = 0;
    const f = supervise(
      {
        create: () => {
          at.push(clock.now());
          if (at.length <= 2) throw new Error('model client cannot connect');
          return async (x: number) => (runs++, x);
        },
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, restart: { backoff: fixed(100) } },
    );
    await expect(settleOn(clock, f(4))).resolves.toBe(4);
    expect(at).toEqual([0, 100, 200]);
    expect(runs).toBe(1);
  });

  it('rejects with ERR_ESCALATED once create() has thrown more than restart.maxRestarts times', async () => {
    const clock = simulatedClock();
    let creates = 0;
    const f = supervise(
      {
        create: (): ((x: number) => number) => {
          creates++;
          throw new Error('bad API key');
        },
      },
      { name: 'summarise', clock, logger: false, restart: { maxRestarts: 2, backoff: fixed(10) } },
    );
    const err = (await caught(settleOn(clock, f(1)))) as BatonError;
    expect(err.code).toBe('ERR_ESCALATED');
    expect(err.message).toContain("'summarise' escalated: more than 2 restarts within 60000 ms");
    expect(err.message).toContain('bad API key');
    expect(creates).toBe(3);
  });

  it('refuses a create() that returns something other than a function, naming what it returned', async () => {
    const f = supervise({ create: () => 42 as never }, { name: 'summarise', logger: false });
    const err = (await caught(f(1))) as BatonError;
    expect(err.code).toBe('ERR_INVALID_OPTION');
    expect(err.message).toContain("'summarise': create() returned 42");
  });

  it('escalates when fresh inputs keep failing past the restart intensity, and a success clears the count', async () => {
    const clock = simulatedClock();
    let healthy = false;
    const f = supervise(
      async (x: number) => {
        if (!healthy) throw new Error('down');
        return x;
      },
      { clock, logger: false, retry: { maxAttempts: 1 }, breaker: false, restart: { maxRestarts: 2, withinMs: 1_000 } },
    );
    await expect(f(1)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    await expect(f(2)).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    await expect(f(3)).rejects.toMatchObject({ code: 'ERR_ESCALATED' });
    healthy = true;
    await expect(f(4)).resolves.toBe(4);
    healthy = false;
    await expect(f(5), 'the window was cleared by the success').rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
  });
});

describe('supervise: the caller\'s context', () => {
  it("keeps the caller's AsyncLocalStorage store across retries: attempt 3 reads it (simulated clock)", async () => {
    const clock = simulatedClock();
    const als = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    const f = supervise(
      async () => {
        seen.push(als.getStore());
        if (seen.length < 3) throw new Error('again');
        return als.getStore();
      },
      { clock, logger: false, retry: { backoff: fixed(5) } },
    );
    const p = als.run('request-42', () => f(0));
    await expect(settleOn(clock, p)).resolves.toBe('request-42');
    expect(seen).toEqual(['request-42', 'request-42', 'request-42']);
  });

  it("keeps the caller's AsyncLocalStorage store across retries on the real clock too, and two callers keep their own", async () => {
    const als = new AsyncLocalStorage<string>();
    const third: (string | undefined)[] = [];
    const attempts = new Map<string, number>();
    const f = supervise(
      async () => {
        const id = als.getStore()!;
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        if (n < 3) throw new Error('again');
        third.push(als.getStore());
        return id;
      },
      { logger: false, retry: { backoff: fixed(2) } },
    );
    const out = await Promise.all([als.run('a', () => f(0)), als.run('b', () => f(0))]);
    expect(out).toEqual(['a', 'b']);
    expect(third.sort()).toEqual(['a', 'b']);
  });

  it("passes the caller's context through, with the attempt's signal in place of the caller's", async () => {
    const controller = new AbortController();
    let got: { configurable: { thread: string }; signal: AbortSignal } | undefined;
    const f = supervise(async (_x: number, ctx: { configurable: { thread: string }; signal: AbortSignal }) => ((got = ctx), ctx.configurable.thread), { logger: false });
    await expect(f(1, { configurable: { thread: 't1' }, signal: controller.signal } as never)).resolves.toBe('t1');
    expect(got!.signal).toBeInstanceOf(AbortSignal);
    expect(got!.signal).not.toBe(controller.signal);
  });
});

describe('supervise: options', () => {
  it.each([
    [{ retry: { maxAttempts: 0 } }, 'task.retry.maxAttempts', 'got 0'],
    [{ retry: { backoff: { jitter: 2 } } }, 'task.retry.backoff.jitter', 'got 2'],
    [{ retry: 3 }, 'task.retry', 'got 3'],
    [{ timeoutMs: -1 }, 'task.timeoutMs', 'got -1'],
    [{ breaker: { threshold: 0 } }, 'task.breaker.threshold', 'got 0'],
    [{ breaker: { maxHoldMs: -5 } }, 'task.breaker.maxHoldMs', 'got -5'],
    [{ breaker: true }, 'task.breaker', 'got true'],
    [{ restart: { withinMs: 0 } }, 'task.restart.withinMs', 'got 0'],
    [{ restart: { backoff: { minMs: -1 } } }, 'task.restart.backoff.minMs', 'got -1'],
    [{ classify: 'retry' }, 'task.classify', 'got "retry"'],
    [{ onDeadLetter: 1 }, 'task.onDeadLetter', 'got 1'],
    [{ deadLetterValue: null }, 'task.deadLetterValue', 'got null'],
    [{ clock: {} }, 'task.clock', 'got an object (no keys)'],
    [{ random: 'seed' }, 'task.random', 'got "seed"'],
    [{ logger: 'loud' }, 'task.logger', 'got "loud"'],
    [{ name: '' }, 'supervise(task, options).name', 'got ""'],
  ])('refuses %j with ERR_INVALID_OPTION naming the option and the value', (options, option, value) => {
    const err = expectBatonError(() => supervise(async (x: number) => x, options as never), 'ERR_INVALID_OPTION', option);
    expect(err.message).toContain(value);
  });

  it('names the option after the task: a bad value for summarise reads summarise.retry.maxAttempts', () => {
    expectBatonError(() => supervise(async (x: number) => x, { name: 'summarise', retry: { maxAttempts: 1.5 } }), 'ERR_INVALID_OPTION', 'summarise.retry.maxAttempts');
  });

  it('refuses a task that is neither a function nor { create }', () => {
    const err = expectBatonError(() => supervise({ run: () => 1 } as never), 'ERR_INVALID_OPTION', 'task');
    expect(err.message).toContain('an object (run)');
  });

  it('logs dead letters and breaker changes through the given pino logger, under the task name', async () => {
    const lines: { msg: string; task: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string; task: string });
        done();
      },
    });
    const dep = dependent();
    const clock = simulatedClock();
    const f = supervise(dep.fn, { name: 'summarise', clock, logger: pino(sink), retry: { maxAttempts: 1 }, breaker: { threshold: 2, backoff: fixed(10) } });
    await caught(f(1));
    await caught(f(2));
    dep.down = false;
    await clock.advance(10);
    await f(3);
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.task, l.msg])).toEqual([
      ['summarise', 'dead-lettered'],
      ['summarise', 'breaker opened'],
      ['summarise', 'breaker closed'],
    ]);
  });
});
