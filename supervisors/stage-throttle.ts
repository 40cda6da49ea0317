import type { EventStream } from '../src/events.js';
import type { Random } from '../src/random.js';
import { fullBucket, holdDelay, refill, takeToken, type RateLimitPolicy, type TokenBucket } from '../policies/rate-limit.js';

/** Where a stage's throttle stands: open, holding its inbox until an instant, or letting one run test the server. */
export type ThrottleStatus = 'open' | 'held' | 'probing';

/**
 * How fast a stage may call its handler. Owns: the token bucket of the agent's `rateLimit` (if any)
 * and the hold a rate-limit refusal starts (an HTTP 429, `rateLimited()`): while held no run starts;
 * when the hold ends one run goes first (probing), and only its outcome reopens the stage or holds it
 * again, so a server that still refuses gets one call per hold, not the whole inbox at once.
 * The decisions are the pure functions of policies/rate-limit.ts. Made only for an agent with a
 * rateLimit, or at its first refusal: a stage that never meets either pays nothing.
 * Contract: `allowance(now)` says how many runs may start now; `started(n, now)` takes their
 * tokens; `nextAt(now)` is when a run may start again (for the stage's timer), Infinity if now or never.
 */
export class StageThrottle {
  status: ThrottleStatus = 'open';
  /** While held: the instant the hold ends. */
  until = 0;
  /** Refused holds in a row (no success between): each holds longer than the last (see holdDelay). */
  private refusals = 0;
  private heldSince = 0;
  private bucket: TokenBucket | undefined;
  /** While probing: the run that tests the server is under way. */
  private probing = false;

  constructor(
    private readonly path: string,
    private readonly limit: RateLimitPolicy | undefined,
    private readonly events: EventStream,
    private readonly random: Random,
    now: number,
  ) {
    this.bucket = limit === undefined ? undefined : fullBucket(limit, now);
  }

  /** Runs that may start now: 0 while held or while the probe runs, 1 for the probe, else the bucket's whole tokens. */
  allowance(now: number): number {
    if (this.status === 'held') {
      if (now < this.until) return 0;
      this.status = 'probing';
      this.probing = false;
    }
    if (this.status === 'probing') return this.probing ? 0 : 1;
    if (this.limit === undefined) return Infinity;
    this.bucket = refill(this.limit, this.bucket!, now);
    return Math.floor(this.bucket.tokens);
  }

  /** `n` runs started at `now`: they take their tokens (the first after a hold is the probe). */
  started(n: number, now: number): void {
    if (n <= 0) return;
    if (this.status === 'probing') this.probing = true;
    if (this.limit === undefined) return;
    for (let i = 0; i < n; i++) this.bucket = takeToken(this.limit, this.bucket!, now).bucket;
  }

  /** When a run may start again (for the stage's one timer); Infinity if one may start now, or nothing waits on time. */
  nextAt(now: number): number {
    if (this.status === 'held') return this.until > now ? this.until : Infinity;
    if (this.status === 'probing' || this.limit === undefined) return Infinity;
    const t = takeToken(this.limit, this.bucket!, now);
    return t.ok ? Infinity : now + t.waitMs;
  }

  /**
   * The server refused a run for rate (`retryAfterMs` if it said how long): hold the inbox. A refusal
   * during a hold that ends later extends it; the probe's refusal starts a new, longer one.
   */
  refused(retryAfterMs: number | undefined, now: number): void {
    // A new hold is one more refusal in a row; runs already in flight when it began may be refused
    // too, and they only extend it (four at once are one refusal, not four: the backoff would jump).
    if (this.status !== 'held') this.refusals++;
    const until = now + holdDelay(retryAfterMs, this.refusals, this.random);
    if (this.status === 'open') this.heldSince = now;
    if (this.status === 'held' && until <= this.until) return;
    this.status = 'held';
    this.until = until;
    this.probing = false;
    this.events.emit({ type: 'throttled', path: this.path, at: now, until, retryAfterMs: until - now, refusals: this.refusals });
  }

  /** A run ended without a rate-limit refusal: the probe's answer reopens the stage; any success ends the streak of refusals. */
  ran(now: number): void {
    if (this.status === 'held') return; // a run from before the hold says nothing about now
    if (this.status === 'probing') {
      this.status = 'open';
      this.probing = false;
      this.events.emit({ type: 'throttle-lifted', path: this.path, at: now, heldMs: now - this.heldSince });
    }
    this.refusals = 0;
  }
}
