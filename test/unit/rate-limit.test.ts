import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fullBucket, rateLimitPolicy, refill, takeToken, type TokenBucket } from '../../policies/rate-limit.js';
import { checkProperty } from '../../testkit/index.js';
import { expectBatonError } from '../support/assertions.js';

describe('a rate limit (token bucket)', () => {
  it('defaults its burst to one second of the rate, at least 1', () => {
    expect(rateLimitPolicy({ perMinute: 600 })).toEqual({ perMs: 0.01, burst: 10 });
    expect(rateLimitPolicy({ perMinute: 30 }).burst).toBe(1);
    expect(rateLimitPolicy({ perSecond: 50, burst: 5 })).toEqual({ perMs: 0.05, burst: 5 });
  });

  it('refuses options that name no rate, two rates, or a rate or burst out of range, naming the option', () => {
    expectBatonError(() => rateLimitPolicy({}), 'ERR_INVALID_OPTION', 'rateLimit');
    expectBatonError(() => rateLimitPolicy({ perSecond: 1, perMinute: 60 }), 'ERR_INVALID_OPTION', 'rateLimit');
    expectBatonError(() => rateLimitPolicy({ perSecond: 0 }), 'ERR_INVALID_OPTION', 'rateLimit.perSecond');
    expectBatonError(() => rateLimitPolicy({ perMinute: Number.NaN }), 'ERR_INVALID_OPTION', 'rateLimit.perMinute');
    expectBatonError(() => rateLimitPolicy({ perSecond: '5' as unknown as number }), 'ERR_INVALID_OPTION', 'rateLimit.perSecond');
    expectBatonError(() => rateLimitPolicy({ perSecond: 5, burst: 0 }), 'ERR_INVALID_OPTION', 'rateLimit.burst');
    expectBatonError(() => rateLimitPolicy({ perSecond: 5, burst: 1.5 }), 'ERR_INVALID_OPTION', 'rateLimit.burst');
    expectBatonError(() => rateLimitPolicy(null as never), 'ERR_INVALID_OPTION', 'rateLimit');
  });

  it('lets the burst go at once, then one call per interval, and says how long to wait', () => {
    const policy = rateLimitPolicy({ perSecond: 10, burst: 3 });
    let bucket = fullBucket(policy, 0);
    const taken: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const r = takeToken(policy, bucket, 0);
      taken.push(r.ok);
      bucket = r.bucket;
    }
    expect(taken).toEqual([true, true, true, false]);
    expect(takeToken(policy, bucket, 0).waitMs).toBe(100);
    expect(takeToken(policy, bucket, 60).waitMs).toBe(40);
    expect(takeToken(policy, bucket, 100).ok).toBe(true);
  });

  it('never lets more than its burst go at once after a quiet spell, and never goes back in time', () => {
    const policy = rateLimitPolicy({ perSecond: 10, burst: 3 });
    const empty: TokenBucket = { tokens: 0, at: 1000 };
    expect(Math.floor(refill(policy, empty, 1_000_000).tokens)).toBe(3);
    expect(refill(policy, empty, 500)).toBe(empty); // a clock read before `at` changes nothing
  });

  it('never lets more calls through in a minute than its rate allows plus one burst, however the caller paces itself', async () => {
    await checkProperty(
      fc.asyncProperty(
        fc.record({ perSecond: fc.integer({ min: 1, max: 500 }), burst: fc.integer({ min: 1, max: 50 }), gaps: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 64 }) }),
        async ({ perSecond, burst, gaps }) => {
          const policy = rateLimitPolicy({ perSecond, burst });
          let bucket = fullBucket(policy, 0);
          let calls = 0;
          for (let i = 0, now = 0; now < 60_000; i++) {
            const r = takeToken(policy, bucket, now);
            bucket = r.bucket;
            if (r.ok) calls++;
            now += r.ok ? gaps[i % gaps.length]! : r.waitMs; // the caller's own pace between calls
          }
          expect(calls).toBeLessThanOrEqual(perSecond * 60 + burst);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('lets an always-busy caller reach the limit within 2% over a minute of simulated time', async () => {
    await checkProperty(
      fc.asyncProperty(fc.record({ perSecond: fc.integer({ min: 1, max: 500 }), burst: fc.integer({ min: 1, max: 50 }) }), async ({ perSecond, burst }) => {
        // As a stage with a full inbox does: call while a token is there, else wait exactly waitMs
        // (simulated time: its timer fires on the instant it was armed for).
        const policy = rateLimitPolicy({ perSecond, burst });
        let bucket = fullBucket(policy, 0);
        let calls = 0;
        for (let now = 0; now < 60_000; ) {
          const r = takeToken(policy, bucket, now);
          bucket = r.bucket;
          if (r.ok) calls++;
          else now += r.waitMs;
        }
        const limit = perSecond * 60 + burst;
        expect(calls).toBeLessThanOrEqual(limit);
        expect(calls).toBeGreaterThanOrEqual(Math.floor(limit * 0.98));
      }),
      { numRuns: 200 },
    );
  });
});
