import type { Cost } from '../policies/budget.js';
import { assertName } from '../src/address.js';
import { BatonError, describe } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { Logger } from '../src/logging.js';
import { AGENT_POLICY_KEYS, type AgentPolicyOptions } from '../policies/agent-policy.js';

// 'kind' too: an agent() result spread into agent() again (to wrap its handler) carries it.
const AGENT_KEYS = ['name', 'handle', 'init', 'route', 'kind', ...AGENT_POLICY_KEYS];

/** What a handler knows about the run it is in. */
export interface TaskContext<S = undefined> {
  /** The task's id: the one given to `send`, or one Baton made. Stable across stages, retries and restarts. */
  readonly taskId: string;
  readonly key: string | undefined;
  /** 1 on the first run of this task at this stage, 2 on its first retry, ... */
  readonly attempt: number;
  /** Aborts when the run times out or its stage stops; whatever the handler returns after that is discarded. */
  readonly signal: AbortSignal;
  /** The stage's logger with the task id bound. */
  readonly log: Logger;
  /** The worker's state from `init` (undefined without `init`); fresh after every failure unless `keepState`. */
  readonly state: S;
  /** The stage's name. */
  readonly stage: string;
  /**
   * Reports what this run cost (`{ tokens, usd }`, each optional): counted against the agent's
   * `budget` and shown in its stats. Call it as often as the run spends.
   */
  spend(cost: Cost): void;
}

/** Where a stage's output goes: a stage name, several (fan-out), or null (the task is complete). */
export type RouteResult = string | readonly string[] | null | undefined;

export interface AgentOptions<I, O, S = undefined> extends AgentPolicyOptions {
  /** The stage's name, unique in its pipeline; also the last segment of its address. */
  readonly name: string;
  /**
   * The task handler. Returning (or resolving to) a value hands it on; throwing or rejecting fails the
   * run. `ctx` is passed when the handler declares a second parameter (`handle.length >= 2`) or the
   * agent has a `route`: a one-parameter handler gets no ctx, which keeps its hot path allocation-free.
   * (So write `(input, ctx) =>`, not `(input, ctx = {}) =>` or `(...args) =>`, when you need ctx.)
   */
  // Method syntax on purpose: it keeps Agent<I, O, S> assignable to Agent<any, any, any> even when O is never.
  handle(input: I, ctx: TaskContext<S>): O | PromiseLike<O>;
  /** Builds the worker's state, at start and after every failure. Optional; without it the state is undefined. */
  init?(): S | PromiseLike<S>;
  /**
   * Where the output goes. Optional; defaults to the next stage in the pipeline's list (and, for
   * the last stage, completion). A name that does not exist dead-letters the task with ERR_UNKNOWN_ADDRESS.
   */
  route?(output: O, ctx: TaskContext<S>): RouteResult;
}

/** An agent definition: immutable data a pipeline turns into a supervised stage. */
export interface Agent<I = any, O = any, S = any> extends AgentOptions<I, O, S> {
  readonly kind: 'agent';
}

/**
 * Defines an agent: an actor whose behaviour is a task handler `(input, ctx) => output`.
 * Validation happens here so a typo fails at definition, naming the agent and the option.
 */
export function agent<I, O, S = undefined>(options: AgentOptions<I, O, S>): Agent<I, O, S> {
  if (options === null || typeof options !== 'object') {
    throw new BatonError('ERR_INVALID_OPTION', `agent(options) needs an object with name and handle; got ${describe(options)}.`, { option: 'agent' });
  }
  assertName(options.name, 'agent name');
  checkKeys(options, AGENT_KEYS, `agent '${options.name}'`);
  for (const fn of ['handle', 'init', 'route'] as const) {
    const v = options[fn];
    if ((fn === 'handle' || v !== undefined) && typeof v !== 'function') {
      throw new BatonError(
        'ERR_INVALID_OPTION',
        `agent '${options.name}': ${fn} must be a function${fn === 'handle' ? ' (input, ctx) => output' : ''}; got ${describe(v)}.`,
        { option: `${options.name}.${fn}`, value: v },
      );
    }
  }
  return Object.freeze({ ...options, kind: 'agent' as const });
}
