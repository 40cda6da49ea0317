import { BatonError } from '../src/errors.js';

/**
 * What a failure says about what to do next:
 * - `terminal`: retrying cannot help (bad input, a 400/401/403/404/422): dead-letter the task now;
 * - `transient`: it may work next time (a 408, a 5xx, a reset connection): retry after the backoff;
 * - `rate-limited`: the server asked us to slow down (a 429, or a 503 with Retry-After): hold the whole
 *   inbox for `retryAfterMs`, charge no task;
 * - `outage`: what the task depends on is down: open the breaker at once.
 * Anything the rules do not recognise is `transient`, which is what Baton did before it had classes:
 * the breaker still tells an outage (fresh tasks failing in a row) from a poison task.
 */
export type ErrorClass = 'terminal' | 'transient' | 'rate-limited' | 'outage';

/** An error's class, and for a rate limit the delay the server asked for. */
export interface Classified {
  readonly kind: ErrorClass;
  /** For `rate-limited`: how long the server asked us to wait, if it said. */
  readonly retryAfterMs?: number;
}

/** A handler's way to say "rate-limited, wait this long": `throw rateLimited({ retryAfterMs: 1000 })`. */
export class RateLimitedError extends BatonError {
  readonly retryAfterMs: number | undefined;
  constructor(retryAfterMs: number | undefined, message?: string, cause?: unknown) {
    super('ERR_RATE_LIMITED', message ?? `rate-limited${retryAfterMs === undefined ? '' : `; retry after ${retryAfterMs} ms`}`, retryAfterMs === undefined ? {} : { retryAfterMs }, cause);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Makes the error a handler throws when a server refused it for rate (an HTTP 429): the stage
 * holds its inbox for `retryAfterMs` and charges no task an attempt. `retryAfterMs` is optional
 * (the stage then backs off on its own); pass the server's Retry-After through `parseRetryAfter`.
 */
export function rateLimited(options: { readonly retryAfterMs?: number; readonly message?: string; readonly cause?: unknown } = {}): RateLimitedError {
  const ms = options.retryAfterMs;
  return new RateLimitedError(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined, options.message, options.cause);
}

/** Rate limits that long, or longer, are taken as 1 hour: a Retry-After past that is a provider's quota reset. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * A Retry-After value as milliseconds from `now`: a number of seconds ('120', 120) or an HTTP date
 * ('Wed, 21 Oct 2026 07:28:00 GMT'). Undefined for anything else; a date in the past is 0; at most
 * an hour.
 */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number') ms = value * 1000;
  else if (typeof value === 'string') {
    const text = value.trim();
    if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
    else if (text.length > 0) {
      const at = Date.parse(text);
      if (!Number.isNaN(at)) ms = at - now;
    }
  }
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.ceil(ms)));
}

const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENOTFOUND']);
const TERMINAL_STATUS = new Set([400, 401, 403, 404, 405, 406, 410, 411, 413, 414, 415, 422]);

/**
 * The default rules, for the shapes errors of common HTTP clients take: a status in `status`,
 * `statusCode` or `response.status`; a Retry-After in `retryAfter`/`retryAfterMs`, `headers` or
 * `response.headers` (a plain object or a Headers); a network error's `code`. Never throws, whatever
 * `err` is (a getter that throws reads as absent).
 */
export function classifyError(err: unknown, now: number): Classified {
  if (isRateLimited(err)) return err.retryAfterMs === undefined ? { kind: 'rate-limited' } : { kind: 'rate-limited', retryAfterMs: err.retryAfterMs };
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return TRANSIENT;
  const status = read(err, 'status') ?? read(err, 'statusCode') ?? read(read(err, 'response'), 'status');
  if (typeof status === 'number') {
    if (status === 429 || status === 503) {
      const after = retryAfterOf(err, now);
      if (status === 429) return after === undefined ? { kind: 'rate-limited' } : { kind: 'rate-limited', retryAfterMs: after };
      if (after !== undefined) return { kind: 'rate-limited', retryAfterMs: after };
      return TRANSIENT;
    }
    if (TERMINAL_STATUS.has(status)) return TERMINAL;
    return TRANSIENT; // 408, 425, other 5xx, and statuses nobody should throw for
  }
  const code = read(err, 'code');
  if (typeof code === 'string' && (TRANSIENT_NETWORK.has(code) || code.startsWith('UND_ERR_'))) return TRANSIENT;
  return TRANSIENT;
}

const TRANSIENT: Classified = Object.freeze({ kind: 'transient' });
const TERMINAL: Classified = Object.freeze({ kind: 'terminal' });

/** `instanceof`, contained: a Proxy whose getPrototypeOf trap throws is not a RateLimitedError. */
function isRateLimited(err: unknown): err is RateLimitedError {
  try {
    return err instanceof RateLimitedError;
  } catch {
    return false;
  }
}

function retryAfterOf(err: object, now: number): number | undefined {
  const ms = read(err, 'retryAfterMs');
  if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(ms));
  return parseRetryAfter(read(err, 'retryAfter') ?? header(read(err, 'headers')) ?? header(read(read(err, 'response'), 'headers')), now);
}

function header(headers: unknown): unknown {
  if (headers === null || typeof headers !== 'object') return undefined;
  try {
    const get = (headers as { get?: unknown }).get;
    if (typeof get === 'function') return (get as (name: string) => unknown).call(headers, 'retry-after') ?? undefined;
  } catch {
    return undefined;
  }
  return read(headers, 'retry-after') ?? read(headers, 'Retry-After');
}

/** `value[key]`, or undefined if `value` is not an object or reading it throws (a hostile getter or Proxy). */
function read(value: unknown, key: string): unknown {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined;
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/**
 * An agent's own rules (the `classify` option): return a class, or `{ kind, retryAfterMs }`, or
 * undefined to fall back to the default rules (classifyError). `now` is the stage's clock, for
 * Retry-After dates.
 */
export type Classifier = (error: unknown, now: number) => ErrorClass | Classified | undefined;

const KINDS: readonly string[] = ['terminal', 'transient', 'rate-limited', 'outage'];

/**
 * The class of `error`: the agent's own rules first, then the defaults. Never throws: a classifier
 * that throws, or answers something that is not a class, counts as undefined (the defaults decide).
 */
export function classifyWith(custom: Classifier | undefined, error: unknown, now: number): Classified {
  if (custom !== undefined) {
    let answer: unknown;
    try {
      answer = custom(error, now);
    } catch {
      answer = undefined;
    }
    if (typeof answer === 'string' && KINDS.includes(answer)) return { kind: answer as ErrorClass };
    if (answer !== null && typeof answer === 'object') {
      const kind = read(answer, 'kind');
      if (typeof kind === 'string' && KINDS.includes(kind)) {
        const ms = read(answer, 'retryAfterMs');
        return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? { kind: kind as ErrorClass, retryAfterMs: Math.min(MAX_RETRY_AFTER_MS, Math.ceil(ms)) } : { kind: kind as ErrorClass };
      }
    }
  }
  return classifyError(error, now);
}
