import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { BatonError, CircuitOpenError, simulatedClock, supervise, type SimulatedClock, type SupervisedDeadLetter } from '../../src/index.js';
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

function failing(times: number, error: () => unknown = () => new Error('flaky')) {
  let calls = 0;
  const fn = async (x: number) => {
    calls++;
    if (calls <= times) throw error();
    return x * 2;
  };
  return { fn, calls: () => calls };
}

describe('supervise', () => {
  it('retries a transient failure with the retry backoff and returns the result', async () => {
    const clock = simulatedClock();
    const at: number[] = [];
    const t = failing(2);
    const f = supervise(async (x: number) => (at.push(clock.now()), t.fn(x)), { clock, logger: false, retry: { backoff: fixed(100) } });
    await expect(settleOn(clock, f(21))).resolves.toBe(42);
    expect(at).toEqual([0, 100, 200]);
  });

  it('dead-letters an input that fails every attempt: the sink gets its history and the call rejects with ERR_TASK_FAILED', async () => {
    const clock = simulatedClock();
    const dead: SupervisedDeadLetter<number>[] = [];
    const f = supervise(failing(99).fn, { name: 'summarise', clock, logger: false, retry: { maxAttempts: 3, backoff: fixed(10) }, onDeadLetter: (d) => dead.push(d) });
    const err = await settleOn(clock, f(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BatonError);
    expect(err).toMatchObject({ code: 'ERR_TASK_FAILED' });
    expect((err as Error).message).toContain("'summarise' failed on every attempt after 3 attempt(s)");
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ name: 'summarise', input: 1, attempts: 3 });
    expect(dead[0]!.errors.map((e) => [e.attempt, e.charged, e.error.message])).toEqual([
      [1, true, 'flaky'],
      [2, true, 'flaky'],
      [3, true, 'flaky'],
    ]);
  });

  it('returns deadLetterValue in place of a dead-lettered input, so the graph can go on', async () => {
    const clock = simulatedClock();
    const f = supervise(failing(99).fn, { clock, logger: false, retry: { maxAttempts: 2, backoff: fixed(1) }, deadLetterValue: (x, e) => -x - (e.code === 'ERR_TASK_FAILED' ? 1000 : 0) });
    await expect(settleOn(clock, f(5))).resolves.toBe(-1005);
  });

  it("dead-letters at once what classify calls 'fail', and rethrows untouched what it calls 'rethrow'", async () => {
    const clock = simulatedClock();
    class Fatal extends Error {}
    const failT = failing(99, () => new Fatal('bad input'));
    const f = supervise(failT.fn, { clock, logger: false, classify: (e) => (e instanceof Fatal ? 'fail' : 'retry') });
    await expect(settleOn(clock, f(1))).rejects.toMatchObject({ code: 'ERR_TASK_FAILED' });
    expect(failT.calls()).toBe(1);

    const original = new Fatal('the caller handles this');
    const g = supervise(failing(99, () => original).fn, { clock, logger: false, classify: () => 'rethrow' });
    await expect(settleOn(clock, g(1))).rejects.toBe(original);
  });

  it.each([
    ['a GraphInterrupt', Object.assign(new Error('interrupt'), { name: 'GraphInterrupt' })],
    ['a ParentCommand', Object.assign(new Error('goto'), { name: 'ParentCommand' })],
    ['anything with is_bubble_up', Object.assign(new Error('bubble'), { is_bubble_up: true })],
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
  });

  it('times out an attempt that never settles, aborts its signal, and retries', async () => {
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

  it('rebuilds a { create } task after every failure, so each retry gets fresh state', async () => {
    const clock = simulatedClock();
    let creates = 0;
    const f = supervise(
      {
        create: () => {
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

  it('opens the breaker on an outage: later calls throw CircuitOpenError without running, a probe after the backoff closes it', async () => {
    const clock = simulatedClock();
    let down = true;
    let calls = 0;
    const f = supervise(
      async (x: number) => {
        calls++;
        if (down) throw new Error('database down');
        return x;
      },
      { clock, logger: false, breaker: { threshold: 3, backoff: fixed(1_000) }, retry: { maxAttempts: 5, backoff: fixed(10) } },
    );
    const inFlight = [1, 2, 3].map((x) => settleOn(clock, f(x)).catch((e: unknown) => e));
    const results = await Promise.all(inFlight);
    expect(results.every((r) => r instanceof CircuitOpenError), 'the calls that met the outage are held, not dead-lettered').toBe(true);
    const before = calls;
    const refused = await f(4).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).code).toBe('ERR_CIRCUIT_OPEN');
    expect(calls, 'an open breaker runs nothing').toBe(before);
    down = false;
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

  it("keeps the caller's AsyncLocalStorage context across retries", async () => {
    const clock = simulatedClock();
    const als = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    let calls = 0;
    const f = supervise(
      async () => {
        seen.push(als.getStore());
        if (++calls < 3) throw new Error('again');
        return als.getStore();
      },
      { clock, logger: false, retry: { backoff: fixed(5) } },
    );
    const p = als.run('request-42', () => f(0));
    await expect(settleOn(clock, p)).resolves.toBe('request-42');
    expect(seen).toEqual(['request-42', 'request-42', 'request-42']);
  });

  it("passes the caller's context through, with a signal added", async () => {
    const f = supervise(async (_x: number, ctx: { configurable: { thread: string }; signal: AbortSignal }) => `${ctx.configurable.thread}:${ctx.signal instanceof AbortSignal}`, { logger: false });
    await expect(f(1, { configurable: { thread: 't1' } } as never)).resolves.toBe('t1:true');
  });

  it.each([
    [{ retry: { maxAttempts: 0 } }, 'task.retry.maxAttempts'],
    [{ timeoutMs: -1 }, 'task.timeoutMs'],
    [{ breaker: { threshold: 0 } }, 'task.breaker.threshold'],
    [{ classify: 'retry' }, 'task.classify'],
  ])('refuses bad options with ERR_INVALID_OPTION naming the option (%j)', (options, option) => {
    const err = expectBatonError(() => supervise(async (x: number) => x, options as never), 'ERR_INVALID_OPTION');
    expect(err.message).toContain(option);
  });

  it('refuses a task that is neither a function nor { create }', () => {
    expectBatonError(() => supervise({ run: () => 1 } as never), 'ERR_INVALID_OPTION');
  });
});
