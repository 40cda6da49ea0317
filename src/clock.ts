/**
 * Time is injected. Everything in Baton that waits (backoff, timeouts, breaker probes,
 * restart windows) asks a Clock, so tests can run minutes of backoff in microseconds
 * on a simulated clock.
 */
/** A timer set on a Clock. */
export interface TimerHandle {
  /** Cancels the timer; calling it after the timer fired does nothing. */
  cancel(): void;
}

/** Where Baton reads time and sets timers: `systemClock` by default, `simulatedClock()` in tests. */
export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds (0 or less: as soon as possible, never synchronously). */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/** Node's setTimeout fires at once (with a warning) past 2^31 - 1 ms, about 24.8 days. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

class NodeTimer implements TimerHandle {
  // Not unref'd: a task waiting out its backoff is work, and work keeps the process alive.
  private handle: NodeJS.Timeout;
  constructor(ms: number, fn: () => void) {
    this.handle = this.arm(performance.now() + Math.max(0, ms), fn);
  }
  /** Longer waits (a backoff with maxMs: Infinity can grow that far) are chained in steps Node accepts. */
  private arm(due: number, fn: () => void): NodeJS.Timeout {
    const left = due - performance.now();
    if (left <= MAX_TIMEOUT_MS) return setTimeout(fn, Math.max(0, left));
    return setTimeout(() => (this.handle = this.arm(due, fn)), MAX_TIMEOUT_MS);
  }
  cancel(): void {
    clearTimeout(this.handle);
  }
}

/** The real clock: `performance.now()` and `setTimeout` (waits past 2^31 ms are chained). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, fn) => new NodeTimer(ms, fn),
};
