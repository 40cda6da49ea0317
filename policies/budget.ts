import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';

/** What a run reports it cost: `ctx.spend({ tokens, usd })`. */
export interface Cost {
  readonly tokens?: number;
  readonly usd?: number;
}

/** An agent's `budget`: limits per window of `perMs`; at least one of `tokens` and `usd`. */
export interface BudgetOptions {
  /** Tokens per window. Optional (give it or `usd`). */
  readonly tokens?: number;
  /** Dollars per window. Optional (give it or `tokens`). */
  readonly usd?: number;
  /** The window, ms: spending starts again from 0 this long after the window's first spend. Required. */
  readonly perMs: number;
  /**
   * When the budget is spent: 'hold' (tasks wait in the inbox until the next window) or 'dead-letter'
   * (tasks end now with ERR_BUDGET_EXHAUSTED). Optional; defaults to 'hold'.
   */
  readonly onExhausted?: 'hold' | 'dead-letter';
  /**
   * One budget per key (the `key` of `send`: a tenant, a user), each with its own window: a key that
   * spent its budget waits ('hold': its tasks wait out its window) or ends its tasks, while other keys
   * go on. Tasks without a key share one budget. Optional; defaults to false: one budget for the agent.
   */
  readonly perKey?: boolean;
}

/** A checked budget: Infinity for a limit not given. */
export interface BudgetPolicy {
  readonly tokens: number;
  readonly usd: number;
  readonly perMs: number;
  readonly onExhausted: 'hold' | 'dead-letter';
  readonly perKey: boolean;
}

/**
 * Spending in the current window; `since` is when the window began (-Infinity: nothing spent yet). A
 * window restored from a journal may have begun before this process's clock started: `since` < 0.
 */
export interface Spending {
  readonly tokens: number;
  readonly usd: number;
  readonly since: number;
}

export const NOTHING_SPENT: Spending = Object.freeze({ tokens: 0, usd: 0, since: -Infinity });

/** Checks `budget` options and makes the policy (ERR_INVALID_OPTION naming `path` for a bad one). */
export function budgetPolicy(options: BudgetOptions, path = 'budget'): BudgetPolicy {
  if (options === null || typeof options !== 'object') throw invalidOption(path, options, 'an object { tokens?, usd?, perMs, onExhausted?, perKey? }');
  checkKeys(options, ['tokens', 'usd', 'perMs', 'onExhausted', 'perKey'], path);
  if (options.perKey !== undefined && typeof options.perKey !== 'boolean') throw invalidOption(`${path}.perKey`, options.perKey, 'true or false');
  const limit = (name: 'tokens' | 'usd'): number => {
    const v = options[name];
    if (v === undefined) return Infinity;
    if (!(typeof v === 'number' && v > 0 && !Number.isNaN(v))) throw invalidOption(`${path}.${name}`, v, 'a number > 0');
    return v;
  };
  const tokens = limit('tokens');
  const usd = limit('usd');
  if (tokens === Infinity && usd === Infinity) throw invalidOption(path, options, 'a limit: tokens, usd or both');
  if (!(Number.isInteger(options.perMs) && options.perMs >= 1)) throw invalidOption(`${path}.perMs`, options.perMs, 'an integer number of ms >= 1 (3_600_000 for an hour)');
  const onExhausted = options.onExhausted ?? 'hold';
  if (onExhausted !== 'hold' && onExhausted !== 'dead-letter') throw invalidOption(`${path}.onExhausted`, onExhausted, "'hold' or 'dead-letter'");
  return Object.freeze({ tokens, usd, perMs: options.perMs, onExhausted, perKey: options.perKey === true });
}

/** The spending at `now`: a window that has run its `perMs` starts again from nothing. */
export function current(policy: { readonly perMs: number }, s: Spending, now: number): Spending {
  return s.since !== -Infinity && now >= s.since + policy.perMs ? NOTHING_SPENT : s;
}

/** Adds a run's cost (the window begins with its first spend). */
export function spend(policy: { readonly perMs: number }, s: Spending, cost: Cost, now: number): Spending {
  const c = current(policy, s, now);
  return { tokens: c.tokens + (cost.tokens ?? 0), usd: c.usd + (cost.usd ?? 0), since: c.since === -Infinity ? now : c.since };
}

/** Whether the budget is spent at `now` (a run that would start now must not). */
export function exhausted(policy: BudgetPolicy, s: Spending, now: number): boolean {
  const c = current(policy, s, now);
  return c.tokens >= policy.tokens || c.usd >= policy.usd;
}

/** When the current window ends (spending starts again), or Infinity if nothing is spent. */
export function windowEnds(policy: BudgetPolicy, s: Spending): number {
  return s.since === -Infinity ? Infinity : s.since + policy.perMs;
}
