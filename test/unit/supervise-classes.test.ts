import { describe, expect, it } from 'vitest';
import { isBatonError, rateLimited, simulatedClock, supervise, type SimulatedClock } from '../../system/index.js';

/** Advances simulated time in small steps until `p` settles. */
async function settleOn<T>(clock: SimulatedClock, p: Promise<T>, stepMs = 50, limitMs = 600_000): Promise<T> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  for (let t = 0; t < limitMs && !done; t += stepMs) {
    await new Promise((r) => setImmediate(r));
    if (!done) await clock.advance(stepMs);
  }
  return p;
}

describe('supervise() sorts failures by the same rules as agents', () => {
  it('fails at once on a terminal error (HTTP 400), without retries', async () => {
    let calls = 0;
    const f = supervise(async () => {
      calls++;
      throw Object.assign(new Error('bad request'), { status: 400 });
    }, { logger: false, clock: simulatedClock() });
    const err = await f(1).catch((e: unknown) => e);
    expect(isBatonError(err) && err.code).toBe('ERR_TASK_FAILED');
    expect(calls).toBe(1);
  });

  it("waits out a 429's Retry-After without charging an attempt, and holds the other calls meanwhile", async () => {
    const clock = simulatedClock();
    const at: number[] = [];
    let refuse = 3;
    const f = supervise(async (x: number) => {
      at.push(clock.now());
      if (refuse-- > 0) throw rateLimited({ retryAfterMs: 1_000 });
      return x;
    }, { logger: false, clock, retry: { maxAttempts: 1 } });
    const one = f(1);
    const two = f(2);
    expect(await settleOn(clock, Promise.all([one, two]))).toEqual([1, 2]);
    // Calls 1 and 2 both refused at 0; the hold lasts 1 s for both, then one more refusal holds them another second.
    expect(at.filter((t) => t === 0)).toHaveLength(2);
    expect(Math.min(...at.filter((t) => t > 0))).toBeGreaterThanOrEqual(1_000);
    expect(at.at(-1)).toBeGreaterThanOrEqual(2_000);
  });

  it("takes classify's error classes: 'terminal' fails, 'rate-limited' waits, 'outage' opens the breaker at once", async () => {
    const clock = simulatedClock();
    const fail = supervise(async () => { throw new Error('nope'); }, { logger: false, clock, classify: () => 'terminal' });
    expect(await fail(1).catch((e: unknown) => isBatonError(e) && e.code)).toBe('ERR_TASK_FAILED');

    let n = 0;
    const wait = supervise(async () => { if (n++ === 0) throw new Error('busy'); return 'ok'; }, { logger: false, clock, classify: () => 'rate-limited', retry: { maxAttempts: 1 } });
    expect(await settleOn(clock, wait(1))).toBe('ok');

    const down = supervise(async () => { throw new Error('db down'); }, { logger: false, clock, classify: () => 'outage' });
    expect(await down(1).catch((e: unknown) => isBatonError(e) && e.code)).toBe('ERR_CIRCUIT_OPEN');
  });

  it('refuses a classify answer it does not know with ERR_INVALID_OPTION', async () => {
    const f = supervise(async () => { throw new Error('x'); }, { logger: false, classify: () => 'maybe' as never });
    await expect(f(1)).rejects.toThrow(/classify returned "maybe"/);
  });
});
