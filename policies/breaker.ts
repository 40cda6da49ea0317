import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { Random } from '../src/random.js';
import { backoff, BREAKER_BACKOFF, calculateDelay, type BackoffOptions, type BackoffPolicy } from './backoff.js';

/**
 * Poison or outage? A failure of a task that has never failed before is evidence against the
 * agent. `threshold` such failures in a row, with no success between, mean the agent (or what it
 * depends on) is broken: the breaker opens, the inbox is held, and after a backoff one probe runs.
 * A task that failed before and fails again is evidence against the task and never reaches here.
 */
export interface BreakerPolicy {
  /** Fresh failures in a row that open the breaker. Optional; defaults to 5. */
  readonly threshold: number;
  /** Wait before each probe: 1 s, x2 per failed probe, at most 60 s. */
  readonly backoff: BackoffPolicy;
  /**
   * Optional; defaults to Infinity (hold as long as it takes: an outage of any length
   * dead-letters no healthy task). After the breaker has held this long, a failed probe is
   * charged to its task, so a batch whose last waiting tasks are all poison does end.
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
  const maxHoldMs = options.maxHoldMs ?? Infinity;
  if (!(Number.isInteger(threshold) && threshold >= 1)) throw invalidOption(`${path}.threshold`, threshold, 'an integer >= 1');
  if (!(typeof maxHoldMs === 'number' && maxHoldMs >= 0)) throw invalidOption(`${path}.maxHoldMs`, maxHoldMs, 'a number of milliseconds >= 0 (or Infinity)');
  return Object.freeze({ threshold, maxHoldMs, backoff: backoff(options.backoff, BREAKER_BACKOFF, `${path}.backoff`) });
}

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

/** Whether a failed probe is charged to its task: only once the breaker has held past maxHoldMs. */
export function chargesProbe(policy: BreakerPolicy, state: BreakerState, now: number): boolean {
  return state.status !== 'closed' && now - state.openedAt >= policy.maxHoldMs;
}
