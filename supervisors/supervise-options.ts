import type { ErrorClass } from '../policies/error-class.js';
import type { AttemptError } from '../actors/envelope.js';
import { systemClock, type Clock } from '../src/clock.js';
import { type BatonError, invalidOption } from '../src/errors.js';
import { createLogger, type Logger, type LoggerOption } from '../src/logging.js';
import { seededRandom, type Random } from '../src/random.js';
import { agentPolicy, type AgentPolicy, type RestartOptions, type RetryOptions } from '../policies/agent-policy.js';
import type { BreakerOptions } from '../policies/breaker.js';

/**
 * supervise()'s types and options. The options mirror an agent's (AgentPolicyOptions) where a call
 * has the same need, and are validated by the same code (agentPolicy), so defaults and error
 * messages are the agent's own.
 */

/** What the task gets as its second argument: a shallow copy of the caller's ctx whose `signal` also fires on timeout. */
export type SupervisedContext<C> = (C extends object ? C : object) & { readonly signal: AbortSignal };

/** The function `supervise` wraps: your node or tool call, with the caller's ctx plus a `signal` that also fires on timeout. */
export type TaskFn<I, O, C> = (input: I, ctx: SupervisedContext<C>) => O | PromiseLike<O>;

/** A task, or a factory whose instance is rebuilt after every failure (fresh state, like an agent's init). */
export type SupervisedTask<I, O, C> =
  | TaskFn<I, O, C>
  | {
      /** Builds the task (a client, a model): called first, and again after every failure, before the next attempt. */
      create(): TaskFn<I, O, C> | PromiseLike<TaskFn<I, O, C>>;
    };

/** What supervise() returns: the task's own signature, always async. */
export type Supervised<I, O, C> = (input: I, ctx?: C) => Promise<O>;

/** classify's answer: try again, dead-letter now, or pass the error to the caller untouched. */
export type FailureVerdict = 'retry' | 'fail' | 'rethrow';

/** What `onDeadLetter` is told when a call gives up on an input: the input, the last error, the attempts and every error. */
export interface SupervisedDeadLetter<I> {
  readonly name: string;
  readonly input: I;
  /** ERR_TASK_FAILED, with the history in `details.errors`. */
  readonly error: BatonError;
  readonly attempts: number;
  /** One record per charged attempt: attempt number, clock time, the error (name, message, code). */
  readonly errors: readonly AttemptError[];
}

/** Options of `supervise(task, options)`: the same policies as an agent, for one async function. */
export interface SuperviseOptions<I, O> {
  /** Names the task in errors and logs. Optional; defaults to the function's name, else 'task'. */
  readonly name?: string;
  /** Optional; defaults to 3 attempts, 100 ms x2 up to 30 s, ±20% jitter (as agents). */
  readonly retry?: RetryOptions;
  /** Optional; defaults to threshold 5, probes after 1 s x2 up to 60 s, maxHoldMs 5 min. `false`: no breaker. */
  readonly breaker?: BreakerOptions | false;
  /**
   * Restart intensity. Optional; defaults to more than 10 counted restarts (fresh failures, create()
   * throwing) within 60,000 ms escalate: that call rejects with ERR_ESCALATED. `backoff` is the wait
   * before create() runs again after it threw; optional; defaults to 100 ms x2 up to 10 s.
   */
  readonly restart?: RestartOptions;
  /** Per attempt. Optional; defaults to 60,000 ms. Infinity: none. */
  readonly timeoutMs?: number;
  /**
   * Decides what a failure is: 'retry', 'fail' (a dead letter now), 'rethrow' (not Baton's business),
   * or one of the error classes agents use: 'transient' (retry), 'terminal' (fail), 'rate-limited'
   * (wait, uncharged, then call again), 'outage' (open the breaker now). Undefined: the default rules.
   * Optional; defaults to the agents' rules (classifyError): HTTP 400/401/403/404/422 fail at once, a
   * 429 (or `rateLimited()`) waits out its Retry-After (1 s doubling to 60 s if it names none), anything
   * else is retried. Control flow and aborts are always rethrown.
   */
  readonly classify?: (error: unknown) => FailureVerdict | ErrorClass | undefined;
  /** Told about every dead letter. Optional; defaults to none. A sink that throws is logged, never rethrown. */
  readonly onDeadLetter?: (deadLetter: SupervisedDeadLetter<I>) => void;
  /** Returned in place of a dead-lettered input (e.g. a LangGraph Command). Optional; without it the call rejects with ERR_TASK_FAILED. */
  readonly deadLetterValue?: (input: I, error: BatonError) => O | PromiseLike<O>;
  /** Optional; defaults to the real clock (systemClock). Pass the testkit's simulatedClock() in tests. */
  readonly clock?: Clock;
  /** A seed or a source for jitter. Optional; defaults to Math.random. */
  readonly random?: number | Random;
  /** A pino logger, or false. Optional; defaults to Baton's pino logger on stderr. */
  readonly logger?: LoggerOption;
}

export interface SupervisorSettings {
  readonly name: string;
  readonly policy: AgentPolicy;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
}

/** Validates the options with the agent's own validators, so a bad value reads the same everywhere. */
export function settings(task: unknown, options: SuperviseOptions<never, unknown>): SupervisorSettings {
  if (options === null || typeof options !== 'object') throw invalidOption('supervise(task, options).options', options, 'an object (or nothing)');
  const name = options.name ?? (typeof task === 'function' && task.name ? task.name : 'task');
  if (typeof name !== 'string' || name === '') throw invalidOption('supervise(task, options).name', name, 'a non-empty string');
  for (const key of ['retry', 'restart', 'breaker'] as const) {
    const v = options[key];
    if (v !== undefined && !(key === 'breaker' && v === false) && (v === null || typeof v !== 'object')) throw invalidOption(`${name}.${key}`, v, key === 'breaker' ? 'an object, or false for no breaker' : 'an object');
  }
  const { retry, restart, breaker, timeoutMs } = options;
  const policy = agentPolicy({ retry, restart, breaker, timeoutMs }, {}, name);
  for (const key of ['classify', 'onDeadLetter', 'deadLetterValue'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') throw invalidOption(`${name}.${key}`, options[key], 'a function');
  }
  const { clock, random, logger } = options;
  if (clock !== undefined && (typeof clock?.now !== 'function' || typeof clock?.setTimer !== 'function')) throw invalidOption(`${name}.clock`, clock, 'a Clock { now(), setTimer(ms, fn) } such as simulatedClock()');
  if (random !== undefined && typeof random !== 'number' && typeof random !== 'function') throw invalidOption(`${name}.random`, random, 'a seed number or a () => number in [0, 1)');
  if (logger !== undefined && logger !== false && (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function' || typeof logger.warn !== 'function')) {
    throw invalidOption(`${name}.logger`, logger, 'a pino logger, or false for none');
  }
  return {
    name,
    policy,
    clock: clock ?? systemClock,
    random: typeof random === 'number' ? seededRandom(random) : (random ?? Math.random),
    log: createLogger(logger).child({ task: name }),
  };
}

