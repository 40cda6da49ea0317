import { invalidOption } from '../src/errors.js';

/**
 * Restart intensity, as in OTP: more than `maxRestarts` restarts within `withinMs` means
 * the child cannot run, and restarting it again would only spin. The window is a list
 * of restart times; it never holds more than maxRestarts + 1 entries.
 */
export interface IntensityPolicy {
  /** Optional; defaults to 10 for agents, 3 for pipelines and supervisors. */
  readonly maxRestarts: number;
  /** Optional; defaults to 60,000 ms. */
  readonly withinMs: number;
}

/** Builds a restart intensity (more than `maxRestarts` within `withinMs` escalates) from options over `defaults`. Throws ERR_INVALID_OPTION naming the bad field. */
export function intensity(options: Partial<IntensityPolicy>, defaults: IntensityPolicy, path = 'restart'): IntensityPolicy {
  const maxRestarts = options.maxRestarts ?? defaults.maxRestarts;
  const withinMs = options.withinMs ?? defaults.withinMs;
  if (!(Number.isInteger(maxRestarts) && maxRestarts >= 0)) throw invalidOption(`${path}.maxRestarts`, maxRestarts, 'an integer >= 0');
  if (!(Number.isFinite(withinMs) && withinMs > 0)) throw invalidOption(`${path}.withinMs`, withinMs, 'a number of milliseconds > 0');
  return Object.freeze({ maxRestarts, withinMs });
}

/** Restart times, oldest first. Readonly so every decision is a pure function. */
export type RestartWindow = readonly number[];

export interface IntensityDecision {
  /** true: restart; false: the limit is passed, escalate. */
  readonly restart: boolean;
  readonly window: RestartWindow;
}

/**
 * Records a restart at `now` and decides. Restarts older than `now - withinMs` fall out;
 * one exactly `withinMs` ago still counts (OTP counts the boundary in). With maxRestarts 3
 * within 1,000 ms: restarts at 0, 10, 20 are allowed; a 4th at 999 escalates; at 1,001 the
 * restart at 0 has left the window, so it is allowed.
 */
export function recordRestart(policy: IntensityPolicy, window: RestartWindow, now: number): IntensityDecision {
  const floor = now - policy.withinMs;
  const kept = window.filter((t) => t >= floor);
  kept.push(now);
  // Only the newest maxRestarts + 1 times can matter to any later decision.
  if (kept.length > policy.maxRestarts + 1) kept.splice(0, kept.length - policy.maxRestarts - 1);
  if (kept.length > policy.maxRestarts) return { restart: false, window: kept };
  return { restart: true, window: kept };
}
