import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import { mailboxPolicy, type MailboxOptions, type MailboxPolicy } from '../src/mailbox.js';
import { backoff, RESTART_BACKOFF, RETRY_BACKOFF, type BackoffOptions, type BackoffPolicy } from './backoff.js';
import { breakerPolicy, NO_BREAKER, type BreakerOptions, type BreakerPolicy } from './breaker.js';
import { intensity, type IntensityPolicy } from './intensity.js';
import { rateLimitPolicy, type RateLimitOptions, type RateLimitPolicy } from './rate-limit.js';
import type { Classifier } from './error-class.js';
import { budgetPolicy, type BudgetOptions, type BudgetPolicy } from './budget.js';

/** Retrying a failed task. */
export interface RetryOptions {
  /** Runs of a task at one stage before it becomes a dead letter. Optional; defaults to 3. */
  readonly maxAttempts?: number;
  /** Optional; defaults to 100 ms, x2 per attempt, at most 30 s, ±20% jitter. */
  readonly backoff?: BackoffOptions;
}

/** Restarting the agent's worker and deciding when the agent cannot run at all. */
export interface RestartOptions {
  /** Optional; defaults to 10. More restarts than this within `withinMs`, with no success between, escalate. */
  readonly maxRestarts?: number;
  /** Optional; defaults to 60,000 ms. */
  readonly withinMs?: number;
  /** Delay before running `init` again after it threw. Optional; defaults to 100 ms, x2, at most 10 s. */
  readonly backoff?: BackoffOptions;
}

/** The policies an agent supervisor interprets; every one has a default, and pipelines set defaults for all stages. */
export interface AgentPolicyOptions {
  readonly retry?: RetryOptions;
  readonly restart?: RestartOptions;
  /** Optional; defaults to threshold 5, probes after 1 s x2 up to 60 s. `false` turns the breaker off. */
  readonly breaker?: BreakerOptions | false;
  /** The stage's inbox. Optional; defaults to 1,000 tasks with back-pressure. */
  readonly mailbox?: MailboxOptions;
  /** Per-run limit for handlers that return a promise. Optional; defaults to 60,000 ms. Infinity: none. */
  readonly timeoutMs?: number;
  /** Tasks run at once. Optional; defaults to 1. */
  readonly concurrency?: number;
  /** Tasks with the same key run one at a time, in the order accepted, also across retries. Optional; defaults to false. */
  readonly orderByKey?: boolean;
  /** Keep the worker's state across a failure instead of running `init` again. Optional; defaults to false. */
  readonly keepState?: boolean;
  /**
   * Fair turns between keys (tenants): at most this many tasks of one key in progress at this stage
   * (running or waiting for a retry), and a round-robin between keys, so one tenant's 10,000 tasks do
   * not delay another's 10. Tasks without a key share one turn. With `orderByKey`, 1. Optional;
   * defaults to none (first come, first served).
   */
  readonly perKeyConcurrency?: number;
  /**
   * What the agent may spend per window (`{ tokens?, usd?, perMs, onExhausted? }`), reported by its
   * runs with `ctx.spend({ tokens, usd })`. Spent: tasks wait for the next window ('hold', the default)
   * or end with ERR_BUDGET_EXHAUSTED ('dead-letter'). Runs already in flight finish. Optional; defaults
   * to none (spending is still counted in stats).
   */
  readonly budget?: BudgetOptions;
  /**
   * How often the handler may be called: `{ perSecond }` or `{ perMinute }` (an LLM provider's RPM),
   * with an optional `burst`. Waiting for the limit is back-pressure, never a failure. Optional;
   * defaults to none.
   */
  readonly rateLimit?: RateLimitOptions;
  /**
   * What a failure means: `(error, now) => 'terminal' | 'transient' | 'rate-limited' | 'outage'` (or
   * `{ kind, retryAfterMs }`), undefined to use the defaults. Optional; defaults to classifyError's
   * rules: HTTP 400/401/403/404/422 terminal, 429 (and 503 with Retry-After) rate-limited, other
   * statuses and network errors transient, `rateLimited()` rate-limited.
   */
  readonly classify?: Classifier;
}

export interface AgentPolicy {
  readonly maxAttempts: number;
  readonly retryBackoff: BackoffPolicy;
  readonly intensity: IntensityPolicy;
  readonly restartBackoff: BackoffPolicy;
  readonly breaker: BreakerPolicy;
  readonly mailbox: MailboxPolicy;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly orderByKey: boolean;
  readonly keepState: boolean;
  readonly rateLimit: RateLimitPolicy | undefined;
  readonly classify: Classifier | undefined;
  readonly perKeyConcurrency: number | undefined;
  readonly budget: BudgetPolicy | undefined;
}

export const AGENT_INTENSITY: IntensityPolicy = Object.freeze({ maxRestarts: 10, withinMs: 60_000 });

/** Merges an agent's own options over its pipeline's defaults and validates the result. */
/** The options every agent (and a pipeline's `defaults`) takes; agent() adds name, handle, init and route. */
export const AGENT_POLICY_KEYS = ['retry', 'restart', 'breaker', 'mailbox', 'timeoutMs', 'concurrency', 'orderByKey', 'keepState', 'rateLimit', 'classify', 'perKeyConcurrency', 'budget'];

export function agentPolicy(own: AgentPolicyOptions, defaults: AgentPolicyOptions, path: string): AgentPolicy {
  for (const [o, where] of [[own, path], [defaults, `${path} (from the pipeline's defaults)`]] as const) {
    for (const [key, keys] of [['retry', ['maxAttempts', 'backoff']], ['restart', ['maxRestarts', 'withinMs', 'backoff']]] as const) {
      const sub = o[key];
      if (sub === undefined) continue;
      if (sub === null || typeof sub !== 'object') throw invalidOption(`${where}.${key}`, sub, 'an object');
      checkKeys(sub, keys, `${where}.${key}`);
    }
  }
  const pick = <K extends keyof AgentPolicyOptions>(k: K): AgentPolicyOptions[K] => (own[k] !== undefined ? own[k] : defaults[k]);
  const retry = { ...defaults.retry, ...own.retry };
  const restart = { ...defaults.restart, ...own.restart };
  const maxAttempts = retry.maxAttempts ?? 3;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw invalidOption(`${path}.retry.maxAttempts`, maxAttempts, 'an integer >= 1');
  const timeoutMs = pick('timeoutMs') ?? 60_000;
  if (!(typeof timeoutMs === 'number' && timeoutMs > 0)) throw invalidOption(`${path}.timeoutMs`, timeoutMs, 'a number of milliseconds > 0 (or Infinity)');
  const concurrency = pick('concurrency') ?? 1;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw invalidOption(`${path}.concurrency`, concurrency, 'an integer >= 1');
  const breaker = pick('breaker');
  const orderByKey = pick('orderByKey') ?? false;
  if (typeof orderByKey !== 'boolean') throw invalidOption(`${path}.orderByKey`, orderByKey, 'true or false');
  const keepState = pick('keepState') ?? false;
  if (typeof keepState !== 'boolean') throw invalidOption(`${path}.keepState`, keepState, 'true or false');
  const rateLimitOptions = pick('rateLimit');
  if (rateLimitOptions !== undefined && rateLimitOptions !== null && typeof rateLimitOptions === 'object') checkKeys(rateLimitOptions, ['perSecond', 'perMinute', 'burst'], `${path}.rateLimit`);
  const rateLimit = rateLimitOptions === undefined ? undefined : rateLimitPolicy(rateLimitOptions, `${path}.rateLimit`);
  const perKeyConcurrency = pick('perKeyConcurrency');
  if (perKeyConcurrency !== undefined && !(Number.isInteger(perKeyConcurrency) && perKeyConcurrency >= 1)) throw invalidOption(`${path}.perKeyConcurrency`, perKeyConcurrency, 'an integer >= 1');
  const budgetOptions = pick('budget');
  const budget = budgetOptions === undefined ? undefined : budgetPolicy(budgetOptions, `${path}.budget`);
  const classify = pick('classify');
  if (classify !== undefined && typeof classify !== 'function') throw invalidOption(`${path}.classify`, classify, "a function (error, now) => 'terminal' | 'transient' | 'rate-limited' | 'outage' | undefined");
  return Object.freeze({
    maxAttempts,
    retryBackoff: backoff(retry.backoff, RETRY_BACKOFF, `${path}.retry.backoff`),
    intensity: intensity(restart, AGENT_INTENSITY, `${path}.restart`),
    restartBackoff: backoff(restart.backoff, RESTART_BACKOFF, `${path}.restart.backoff`),
    breaker: breaker === false ? NO_BREAKER : breakerPolicy({ ...(defaults.breaker || {}), ...(breaker || {}) }, `${path}.breaker`),
    mailbox: mailboxPolicy({ ...defaults.mailbox, ...own.mailbox }, `${path}.mailbox`),
    timeoutMs,
    concurrency,
    orderByKey,
    keepState,
    rateLimit,
    classify,
    perKeyConcurrency,
    budget,
  });
}
