import { describe, expect, it } from 'vitest';
import { BatonError, simulatedClock, supervise } from '../../system/index.js';

// Edge cases of supervise() found by a review (each test failed before its fix).

const caught = (p: Promise<unknown>) => p.then((v) => ({ resolved: v }), (e: unknown) => e);

describe('supervise(), edge cases', () => {
  it('gives create() timeoutMs too: a hung create() fails, is retried, and the calls end with ERR_ESCALATED instead of waiting forever', async () => {
    const clock = simulatedClock();
    let creates = 0;
    const f = supervise({ create: () => (creates++, new Promise<(x: number) => number>(() => undefined)) }, { clock, logger: false, timeoutMs: 100, restart: { maxRestarts: 2 } });
    const calls = [0, 1, 2].map((i) => caught(f(i)));
    await clock.advance(3_600_000);
    const results = await Promise.all(calls);
    expect(results.map((r) => (r as BatonError).code)).toEqual(['ERR_ESCALATED', 'ERR_ESCALATED', 'ERR_ESCALATED']);
    expect((results[0] as BatonError).message).toContain('create() took longer than timeoutMs (100 ms)');
    expect(creates).toBe(3); // one shared build: the first try and two restarts
  });

  it('escalates a create() that always throws after maxRestarts failures in a row, even when the backoff spreads them past withinMs', async () => {
    const clock = simulatedClock();
    let creates = 0;
    const f = supervise(
      {
        create: (): ((x: number) => number) => {
          creates++;
          throw new Error('bad API key');
        },
      },
      { clock, logger: false, random: () => 0.5, restart: { maxRestarts: 12 } },
    );
    let settled: unknown;
    void caught(f(1)).then((r) => (settled = r));
    for (let i = 0; i < 360 && settled === undefined; i++) await clock.advance(10_000);
    expect((settled as BatonError).code).toBe('ERR_ESCALATED');
    expect(creates).toBe(13);
    expect(clock.nextAt()).toBeUndefined(); // no timer left: the process can exit
  });

  it('contains a deadLetterValue that throws: the call still rejects with the dead letter (ERR_TASK_FAILED)', async () => {
    const f = supervise(
      async (): Promise<number> => {
        throw new Error('poison');
      },
      {
        logger: false,
        retry: { maxAttempts: 1 },
        deadLetterValue: () => {
          throw new Error('sink bug');
        },
      },
    );
    const r = (await caught(f(1))) as BatonError;
    expect(r.code).toBe('ERR_TASK_FAILED');
    expect(r.message).toContain('poison');
  });

  it.each([
    [{ retry: { backoff: null } }, 'retry.backoff'],
    [{ breaker: { backoff: null } }, 'breaker.backoff'],
    [{ restart: { backoff: null } }, 'restart.backoff'],
    [{ breaker: { maxHoldMs: '5' } }, 'maxHoldMs'],
    [{ retry: { backoff: { jitter: null } } }, 'jitter'],
    [{ retry: { backoff: { maxMs: '500' } } }, 'maxMs'],
    [{ retry: { backoff: 5 } }, 'backoff'],
    [{ restart: { backoff: 'fast' } }, 'backoff'],
  ])('refuses %j with ERR_INVALID_OPTION naming %s', (options, named) => {
    let err: unknown;
    try {
      supervise(async (x: number) => x, options as never);
    } catch (e) {
      err = e;
    }
    expect((err as BatonError).code).toBe('ERR_INVALID_OPTION');
    expect((err as BatonError).message).toContain(named);
  });

  it('takes ctx.signal: null as no signal, also for a task built by create()', async () => {
    const f = supervise({ create: () => async (x: number) => x }, { logger: false });
    expect(await caught(f(1, { signal: null } as never))).toEqual({ resolved: 1 });
  });
});
