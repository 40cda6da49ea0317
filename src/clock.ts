/**
 * Time is injected. Everything in Baton that waits (backoff, timeouts, breaker probes,
 * restart windows) asks a Clock, so tests can run minutes of backoff in microseconds
 * on a simulated clock.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds (0 or less: as soon as possible, never synchronously). */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

class NodeTimer implements TimerHandle {
  // Not unref'd: a task waiting out its backoff is work, and work keeps the process alive.
  constructor(private readonly handle: NodeJS.Timeout) {}
  cancel(): void {
    clearTimeout(this.handle);
  }
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, fn) => new NodeTimer(setTimeout(fn, Math.max(0, ms))),
};
