import { invalidOption } from '../src/errors.js';
import { calculateDelay, type BackoffPolicy } from './backoff.js';
import type { Random } from '../src/random.js';

/**
 * How often an agent's handler may be called: a token bucket. Tokens come back at a steady rate
 * (`perSecond`, or `perMinute`) up to `burst`; each call takes one. A call that finds no token waits:
 * waiting for a token is back-pressure, not a failure (the task stays in the inbox).
 */
export interface RateLimitPolicy {
  /** Tokens per millisecond. */
  readonly perMs: number;
  /** Tokens the bucket holds at most (and starts with). */
  readonly burst: number;
}

/** What an agent's `rateLimit` takes: one of `perSecond` and `perMinute`, and an optional `burst`. */
export interface RateLimitOptions {
  /** Calls per second. One of `perSecond` and `perMinute` is required. */
  readonly perSecond?: number;
  /** Calls per minute (an LLM provider's RPM). */
  readonly perMinute?: number;
  /**
   * Calls that may go at once after a quiet spell. Optional; defaults to one second's worth of the
   * rate (at least 1): `{ perMinute: 600 }` lets 10 calls go at once, then one every 100 ms.
   */
  readonly burst?: number;
}

/** The bucket: tokens held at the instant `at` (clock ms). */
export interface TokenBucket {
  readonly tokens: number;
  readonly at: number;
}

/** Checks `rateLimit` options and makes the policy (ERR_INVALID_OPTION naming `path` for a bad one). */
export function rateLimitPolicy(options: RateLimitOptions, path = 'rateLimit'): RateLimitPolicy {
  if (options === null || typeof options !== 'object') throw invalidOption(path, options, 'an object { perSecond } or { perMinute }, with an optional burst');
  const { perSecond, perMinute } = options;
  if ((perSecond === undefined) === (perMinute === undefined)) {
    throw invalidOption(path, options, 'exactly one of perSecond and perMinute (calls per second or per minute, a number > 0)');
  }
  const rate = perSecond ?? perMinute!;
  const name = perSecond !== undefined ? 'perSecond' : 'perMinute';
  if (!(typeof rate === 'number' && Number.isFinite(rate) && rate > 0)) throw invalidOption(`${path}.${name}`, rate, 'a finite number of calls > 0');
  const perMs = perSecond !== undefined ? rate / 1000 : rate / 60_000;
  const burst = options.burst ?? Math.max(1, Math.floor(perMs * 1000));
  if (!(typeof burst === 'number' && Number.isInteger(burst) && burst >= 1)) throw invalidOption(`${path}.burst`, burst, 'an integer >= 1');
  return Object.freeze({ perMs, burst });
}

/** A full bucket at `now`: a stage starts (or restarts) with its burst available. */
export function fullBucket(policy: RateLimitPolicy, now: number): TokenBucket {
  return { tokens: policy.burst, at: now };
}

/**
 * The bucket at `now`: tokens that came back since `at`, up to the burst and a millisecond's worth
 * more. Timers fire on whole milliseconds: at 69 calls/s a token is due every 14.49 ms, the wait is
 * 15 ms, and the 0.035 of a token over must carry to the next call; capped at the burst (1 here) it
 * was lost each time and the rate fell to 66.7/s, 3.4% short. The extra is less than one token, so
 * no more than `burst` calls ever go at once, and it creates no token: over any window the calls
 * stay within the rate plus one burst.
 */
export function refill(policy: RateLimitPolicy, bucket: TokenBucket, now: number): TokenBucket {
  if (now <= bucket.at) return bucket;
  const cap = policy.burst + Math.min(policy.perMs, 0.999);
  return { tokens: Math.min(cap, bucket.tokens + (now - bucket.at) * policy.perMs), at: now };
}

/**
 * Takes one token at `now` if there is one. Otherwise says how long until there is: with
 * `{ perMinute: 60 }` and an empty bucket, 1,000 ms after the last token was taken.
 */
export function takeToken(policy: RateLimitPolicy, bucket: TokenBucket, now: number): { readonly bucket: TokenBucket; readonly ok: boolean; readonly waitMs: number } {
  const b = refill(policy, bucket, now);
  if (b.tokens >= 1) return { bucket: { tokens: b.tokens - 1, at: b.at }, ok: true, waitMs: 0 };
  return { bucket: b, ok: false, waitMs: Math.ceil((1 - b.tokens) / policy.perMs) };
}

/** How long to hold after a rate-limit refusal that named no delay: 1 s, doubling to 60 s, ±20%. */
export const THROTTLE_BACKOFF: BackoffPolicy = Object.freeze({ minMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.2 });

/**
 * How long a stage holds its inbox after its `refusals`-th refused hold in a row: the first time, the
 * server's Retry-After when it gave one (it knows best; a value past an hour was already clamped),
 * else 1 s; each time after, at least the throttle backoff for that many (2 s, 4 s, ... 60 s, ±20%)
 * even if the server says less. A server that keeps answering "Retry-After: 0" must not be called in a
 * loop (a property found one: the simulated clock never advanced).
 */
export function holdDelay(retryAfterMs: number | undefined, refusals: number, random: Random): number {
  const backoff = calculateDelay(THROTTLE_BACKOFF, refusals, random);
  if (retryAfterMs === undefined) return backoff;
  return refusals <= 1 ? retryAfterMs : Math.max(retryAfterMs, backoff);
}
