import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';

const BACKOFF_KEYS = ['minMs', 'maxMs', 'factor', 'jitter'];
import type { Random } from '../src/random.js';

/**
 * How long to wait before the n-th consecutive retry or restart: exponential, capped, jittered.
 * Immutable data; `calculateDelay` is the whole interpreter.
 */
export interface BackoffPolicy {
  /** Delay before the first retry. Optional; defaults to the owner's default (retry: 100 ms). */
  readonly minMs: number;
  /** Cap on any delay. Optional; defaults to the owner's default (retry: 30 s). */
  readonly maxMs: number;
  /** Growth per step. Optional; defaults to 2. */
  readonly factor: number;
  /** Fraction of the delay drawn at random either way (0.2 = ±20%). Optional; defaults to 0.2. */
  readonly jitter: number;
}

/** Backoff settings, each optional (the defaults depend on where the backoff is used: retries, restarts, the breaker). See BackoffPolicy. */
export type BackoffOptions = Partial<BackoffPolicy>;

/** Builds a backoff policy from options over `defaults`, validated. Throws ERR_INVALID_OPTION naming the bad field (`retry.backoff.minMs`, ...). */
export function backoff(options: BackoffOptions = {}, defaults: BackoffPolicy = RETRY_BACKOFF, path = 'backoff'): BackoffPolicy {
  if (options === null || typeof options !== 'object') throw invalidOption(path, options, 'an object { minMs?, maxMs?, factor?, jitter? }');
  checkKeys(options, BACKOFF_KEYS, path);
  const p = { ...defaults, ...stripUndefined(options) };
  // typeof first: `>=` would take '500' or null for a number.
  const isNumber = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);
  if (!(isNumber(p.minMs) && Number.isFinite(p.minMs) && p.minMs >= 0)) throw invalidOption(`${path}.minMs`, p.minMs, 'a number of milliseconds >= 0');
  if (!(isNumber(p.maxMs) && p.maxMs >= p.minMs)) throw invalidOption(`${path}.maxMs`, p.maxMs, `a number of milliseconds >= minMs (${p.minMs})`);
  if (!(isNumber(p.factor) && Number.isFinite(p.factor) && p.factor >= 1)) throw invalidOption(`${path}.factor`, p.factor, 'a number >= 1');
  if (!(isNumber(p.jitter) && p.jitter >= 0 && p.jitter <= 1)) throw invalidOption(`${path}.jitter`, p.jitter, 'a fraction between 0 and 1');
  return Object.freeze(p);
}

/** The design's task retry default: 100 ms, x2 per attempt, at most 30 s, ±20%. */
export const RETRY_BACKOFF: BackoffPolicy = Object.freeze({ minMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2 });
/** Breaker probes: 1 s, x2, at most 60 s. */
export const BREAKER_BACKOFF: BackoffPolicy = Object.freeze({ minMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.2 });
/** Restarts after a failed restart (init threw): 100 ms, x2, at most 10 s. */
export const RESTART_BACKOFF: BackoffPolicy = Object.freeze({ minMs: 100, maxMs: 10_000, factor: 2, jitter: 0.2 });

/**
 * Delay before step `n` (1-based): min(maxMs, minMs * factor^(n-1)), then jittered and capped again.
 * Worked numbers for the retry default: n=1 -> 100 ms (80..120), n=2 -> 200 ms, n=9 -> 25.6 s,
 * n=10 -> 30 s (capped: jitter never pushes past maxMs, so 24..30 s).
 */
export function calculateDelay(policy: BackoffPolicy, n: number, random: Random): number {
  // minMs 0 stays 0 at every step (and 0 x Infinity, from a huge step, would be NaN).
  if (n < 1 || policy.maxMs === 0 || policy.minMs === 0) return 0;
  // Exponent clamp keeps factor^n finite for absurd n (factor 2, n 2000 would be Infinity).
  const base = Math.min(policy.maxMs, policy.minMs * Math.pow(policy.factor, Math.min(n - 1, 1000)));
  if (policy.jitter === 0) return base;
  const spread = base * policy.jitter;
  return Math.min(policy.maxMs, Math.max(0, base - spread + random() * 2 * spread));
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
