import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import { backoff, RESTART_BACKOFF, type BackoffOptions, type BackoffPolicy } from './backoff.js';
import { intensity, type IntensityPolicy } from './intensity.js';

/**
 * Supervision strategies are immutable data built by factories; the supervisor that
 * interprets them is small. `restartSet` and `shouldRestart` are the pure decisions.
 */
export type StrategyKind = 'one-for-one' | 'one-for-all' | 'rest-for-one';

/** permanent: always restarted. transient: restarted only after a crash. temporary: never restarted. */
export type RestartType = 'permanent' | 'transient' | 'temporary';

/** How a child ended: `normal` (it stopped itself) or `crash` (it threw, or escalated). */
export type ExitKind = 'normal' | 'crash';

/** How a supervisor answers a child's exit: which children restart (its kind), how many restarts it allows (intensity), and how long it waits (backoff). Made by oneForOne, oneForAll or restForOne; a supervisor takes no other. */
export interface SupervisorStrategy {
  readonly kind: StrategyKind;
  readonly intensity: IntensityPolicy;
  /** Delay before the n-th restart in a row (n resets after `resetAfterMs` with no restart). */
  readonly backoff: BackoffPolicy;
  /** Optional; defaults to 30,000 ms. A quiet period that resets the backoff step to 1. */
  readonly resetAfterMs: number;
}

/** A supervisor strategy's options: restart intensity (`maxRestarts` within `withinMs`; optional, defaults to 3 within 5,000 ms), the restart backoff and its quiet period. */
export interface StrategyOptions extends Partial<IntensityPolicy> {
  /** Optional; defaults to no delay (minMs 0, maxMs 0): restart at once, as OTP does. */
  readonly backoff?: BackoffOptions;
  readonly resetAfterMs?: number;
}

export const SUPERVISOR_INTENSITY: IntensityPolicy = Object.freeze({ maxRestarts: 3, withinMs: 5_000 });
const NO_BACKOFF: BackoffPolicy = Object.freeze({ ...RESTART_BACKOFF, minMs: 0, maxMs: 0 });

/** Strategies made by the factories below: a supervisor interprets no other (a hand-made object would fail at its first crash). */
const MADE = new WeakSet<object>();

/** Whether `value` is a strategy made by oneForOne, oneForAll or restForOne. */
export function isStrategy(value: unknown): value is SupervisorStrategy {
  return value !== null && typeof value === 'object' && MADE.has(value);
}

/** The restart types a child spec may name. */
export const RESTART_TYPES: readonly RestartType[] = ['permanent', 'transient', 'temporary'];

function make(kind: StrategyKind, options: StrategyOptions = {}): SupervisorStrategy {
  if (options === null || typeof options !== 'object') throw invalidOption('strategy', options, 'an object { maxRestarts?, withinMs?, backoff?, resetAfterMs? }');
  checkKeys(options, ['maxRestarts', 'withinMs', 'backoff', 'resetAfterMs'], 'strategy');
  const resetAfterMs = options.resetAfterMs ?? 30_000;
  if (!(typeof resetAfterMs === 'number' && resetAfterMs >= 0)) throw invalidOption('strategy.resetAfterMs', resetAfterMs, 'a number of milliseconds >= 0');
  const strategy: SupervisorStrategy = Object.freeze({
    kind,
    intensity: intensity(options, SUPERVISOR_INTENSITY, 'strategy'),
    backoff: options.backoff ? backoff(options.backoff, { ...RESTART_BACKOFF, minMs: options.backoff.minMs ?? 0 }, 'strategy.backoff') : NO_BACKOFF,
    resetAfterMs,
  });
  MADE.add(strategy);
  return strategy;
}

/** Restart only the child that failed. */
export const oneForOne = (options?: StrategyOptions): SupervisorStrategy => make('one-for-one', options);
/** Restart every child when one fails (children that depend on each other's state). */
export const oneForAll = (options?: StrategyOptions): SupervisorStrategy => make('one-for-all', options);
/** Restart the failed child and every child started after it (later children depend on earlier). */
export const restForOne = (options?: StrategyOptions): SupervisorStrategy => make('rest-for-one', options);

/** Whether a child that ended this way is restarted at all. */
export function shouldRestart(type: RestartType, exit: ExitKind): boolean {
  if (type === 'permanent') return true;
  if (type === 'transient') return exit === 'crash';
  return false;
}

/**
 * Indexes (in start order) of the children to restart when child `failed` of `count` ends
 * and must be restarted. The failed child is always in the set.
 */
export function restartSet(kind: StrategyKind, failed: number, count: number): number[] {
  if (kind === 'one-for-one') return [failed];
  const from = kind === 'one-for-all' ? 0 : failed;
  const out: number[] = [];
  for (let i = from; i < count; i++) out.push(i);
  return out;
}
