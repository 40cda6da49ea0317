import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { Random } from '../src/random.js';
import { backoff, BREAKER_BACKOFF, calculateDelay, type BackoffOptions, type BackoffPolicy } from './backoff.js';

/**
 * Poison or outage? A failure of a task that has never failed before is evidence against the
 * agent. `threshold` such failures in a row, with no success between, mean the agent (or what it
 * depends on) is broken: the breaker opens, the inbox is held, and after a backoff one probe runs.
 * A task that failed before and fails again is evidence against the task and never reaches here;
 * so is a task whose failure was excused in a hold that a success ended (StageFailures.excusedBefore).
 */
export interface BreakerPolicy {
  /** Fresh failures in a row that open the breaker. Optional; defaults to 5. */
  readonly threshold: number;
  /** Wait before each probe: 1 s, x2 per failed probe, at most 60 s. */
  readonly backoff: BackoffPolicy;
  /**
   * Optional; defaults to 300,000 (5 min). While the breaker has held less than this, a failed
   * probe is the agent's: an outage shorter than maxHoldMs costs no task an attempt. Past it, a
   * task that already failed as a probe in this hold is charged when it fails as a probe again, and
   * the breaker still waits its backoff before the next probe. So a burst of poison tasks with
   * nothing healthy behind them (every probe a fresh poison task) ends: with 6 of them and the
   * defaults, after the 5 min hold and about 6 x 3 probes (at most 60 s apart), about 18 min more.
   * A longer outage charges at most one held task per probe, and only one that had its free probe
   * in this hold: with 1,000 tasks waiting, the first is dead-lettered after some 50 hours.
   * Infinity: hold as long as it takes, and a poison burst with nothing behind it never ends.
   */
  readonly maxHoldMs: number;
}

/** The breaker of an agent: when fresh failures mean the agent is broken (an outage), not the tasks. Every field optional; see BreakerPolicy for the defaults. */
export interface BreakerOptions {
  readonly threshold?: number;
  readonly backoff?: BackoffOptions;
  readonly maxHoldMs?: number;
}

/** Builds a breaker policy from options: threshold 5, probes after 1 s x2 up to 60 s, maxHoldMs Infinity by default. Throws ERR_INVALID_OPTION naming the bad field. */
export function breakerPolicy(options: BreakerOptions = {}, path = 'breaker'): BreakerPolicy {
  if (options === null || typeof options !== 'object') throw invalidOption(path, options, 'an object { threshold?, backoff?, maxHoldMs? } or false');
  checkKeys(options, ['threshold', 'backoff', 'maxHoldMs'], path);
  const threshold = options.threshold ?? 5;
  const maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  if (!(Number.isInteger(threshold) && threshold >= 1)) throw invalidOption(`${path}.threshold`, threshold, 'an integer >= 1');
  if (!(typeof maxHoldMs === 'number' && maxHoldMs >= 0)) throw invalidOption(`${path}.maxHoldMs`, maxHoldMs, 'a number of milliseconds >= 0 (or Infinity)');
  return Object.freeze({ threshold, maxHoldMs, backoff: backoff(options.backoff, BREAKER_BACKOFF, `${path}.backoff`) });
}

/** The breaker's default maxHoldMs (see BreakerPolicy.maxHoldMs). */
export const DEFAULT_MAX_HOLD_MS = 300_000;

/** A breaker that never opens (`breaker: false`). */
export const NO_BREAKER: BreakerPolicy = Object.freeze({ threshold: Infinity, maxHoldMs: Infinity, backoff: BREAKER_BACKOFF });

/** A breaker's state: closed (counting fresh failures in a row), open (holding the inbox until `probeAt`), or probing (one probe runs). */
export type BreakerState =
  | { readonly status: 'closed'; readonly freshFailures: number }
  /** Holding the inbox until `probeAt`; `openedAt` is when this outage began. */
  | { readonly status: 'open'; readonly probes: number; readonly openedAt: number; readonly probeAt: number }
  /** One probe is running. */
  | { readonly status: 'probing'; readonly probes: number; readonly openedAt: number };

export const CLOSED: BreakerState = Object.freeze({ status: 'closed', freshFailures: 0 });

/** A fresh task failed while the breaker was closed. */
export function onFreshFailure(policy: BreakerPolicy, state: BreakerState, now: number, random: Random): BreakerState {
  if (state.status !== 'closed') return state;
  const freshFailures = state.freshFailures + 1;
  if (freshFailures < policy.threshold) return { status: 'closed', freshFailures };
  return { status: 'open', probes: 0, openedAt: now, probeAt: now + calculateDelay(policy.backoff, 1, random) };
}

/** Any success closes the breaker and clears the count. */
export function onSuccess(state: BreakerState): BreakerState {
  return state.status === 'closed' && state.freshFailures === 0 ? state : CLOSED;
}

/** The probe time has come and a probe task starts. */
export function startProbe(state: BreakerState): BreakerState {
  if (state.status !== 'open') return state;
  return { status: 'probing', probes: state.probes, openedAt: state.openedAt };
}

/** The probe failed: hold again, longer. */
export function onProbeFailure(policy: BreakerPolicy, state: BreakerState, now: number, random: Random): BreakerState {
  if (state.status !== 'probing') return state;
  const probes = state.probes + 1;
  return { status: 'open', probes, openedAt: state.openedAt, probeAt: now + calculateDelay(policy.backoff, probes + 1, random) };
}

/** The probe failed on a task that had failed before (evidence against the task, which is charged): probe again at once with another. */
export function probeAgainNow(state: BreakerState, now: number): BreakerState {
  if (state.status !== 'probing') return state;
  return { status: 'open', probes: state.probes, openedAt: state.openedAt, probeAt: now };
}

/**
 * Whether a fresh task's failed probe is charged to it: only once the breaker has held past
 * maxHoldMs, and only if the task already failed as a probe in this hold (`probedBefore`), so every
 * waiting task gets one free probe per hold before any is charged.
 */
export function chargesProbe(policy: BreakerPolicy, state: BreakerState, now: number, probedBefore: boolean): boolean {
  return probedBefore && state.status !== 'closed' && now - state.openedAt >= policy.maxHoldMs;
}
