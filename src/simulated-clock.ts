import type { Clock, TimerHandle } from './clock.js';

/**
 * A clock whose time moves only when told to. Timers fire in due order, ties in the
 * order they were set; `advance` lets the promises a timer callback starts settle
 * before the next timer fires, so async code observes the same order it would in real time.
 */
export interface SimulatedClock extends Clock {
  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): Promise<void>;
  /** Fires timers until none is left or `limitMs` of simulated time has passed. */
  runAll(limitMs?: number): Promise<void>;
  /** Number of timers waiting to fire. */
  pending(): number;
  /** When the next timer is due, or undefined if none waits: lets a test jump straight to it. */
  nextAt(): number | undefined;
}

interface SimTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const flushMicrotasks = async (): Promise<void> => {
  // Several turns: a callback's promise chain may take a few hops to settle.
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** A clock for tests: time moves only when you call `advance(ms)` (timers due by then fire, in order). Pass it to `createSystem({ clock })`. */
export function simulatedClock(start = 0): SimulatedClock {
  let now = start;
  let seq = 0;
  let timers: SimTimer[] = [];

  const nextDue = (): SimTimer | undefined => {
    let best: SimTimer | undefined;
    for (const t of timers) {
      if (t.cancelled) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  };

  const fireUntil = async (limit: number): Promise<void> => {
    await flushMicrotasks();
    for (;;) {
      const t = nextDue();
      if (t === undefined || t.at > limit) break;
      timers = timers.filter((x) => x !== t && !x.cancelled);
      now = Math.max(now, t.at);
      t.fn();
      await flushMicrotasks();
    }
    now = Math.max(now, limit);
  };

  return {
    now: () => now,
    setTimer(ms, fn): TimerHandle {
      const timer: SimTimer = { at: now + Math.max(0, ms), seq: seq++, fn, cancelled: false };
      timers.push(timer);
      return {
        cancel() {
          timer.cancelled = true;
        },
      };
    },
    advance: (ms) => fireUntil(now + ms),
    async runAll(limitMs = 24 * 3600_000) {
      const limit = now + limitMs;
      for (;;) {
        const t = nextDue();
        if (t === undefined || t.at > limit) return;
        await fireUntil(t.at);
      }
    },
    pending: () => timers.filter((t) => !t.cancelled).length,
    nextAt: () => nextDue()?.at,
  };
}
