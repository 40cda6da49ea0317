import type { BatonEvent, SimulatedClock } from '../../system/index.js';

/** A promise the test opens by hand: handlers await `opened` to stay busy until `open()`. */
export function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

/** Resolves after `ms` of simulated time. */
export function sleep(clock: SimulatedClock, ms: number): Promise<void> {
  return new Promise<void>((r) => clock.setTimer(ms, r));
}

/** The events of one type, typed. */
export function ofType<T extends BatonEvent['type']>(events: readonly BatonEvent[], type: T): Extract<BatonEvent, { type: T }>[] {
  return events.filter((e): e is Extract<BatonEvent, { type: T }> => e.type === type);
}

/** A backoff of exactly `ms` every time (no growth, no jitter). */
export const fixed = (ms: number) => ({ minMs: ms, maxMs: ms, factor: 1, jitter: 0 });

/** 0, 1, ..., n - 1. */
export const range = (n: number): number[] => [...Array(n).keys()];

/** Counts runs in flight and remembers the most at once. */
export function inFlightMeter(): { enter: () => void; leave: () => void; readonly max: number; readonly now: number } {
  let now = 0;
  let max = 0;
  return {
    enter: () => void (max = Math.max(max, ++now)),
    leave: () => void now--,
    get max() {
      return max;
    },
    get now() {
      return now;
    },
  };
}

/** Advances simulated time in steps until `done()` holds (or `limitMs` passes), letting promises settle between steps. */
export async function advanceUntil(clock: SimulatedClock, done: () => boolean, limitMs = 3_600_000, stepMs = 50): Promise<void> {
  for (let t = 0; t <= limitMs && !done(); t += stepMs) {
    for (let i = 0; i < 2; i++) await new Promise<void>((r) => setImmediate(r));
    if (done()) break;
    await clock.advance(stepMs);
  }
}
