import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

/** Bounds of one worker thread (Node's `resourceLimits`), in MB. Each is optional; defaults to Node's own. */
export interface ThreadLimits {
  /** The worker's main heap. A worker that needs more dies alone (ERR_WORKER_MEMORY); the process lives on. */
  readonly maxOldGenerationSizeMb?: number;
  readonly maxYoungGenerationSizeMb?: number;
  readonly codeRangeSizeMb?: number;
  readonly stackSizeMb?: number;
}

/**
 * An agent whose handler runs in worker threads (`isolation: 'thread'`). The handler comes from a
 * module, since a function cannot cross into another thread: the module exports `handle(input, ctx)`
 * (or a default function) and optionally `init()`, run once in each worker (its result is `ctx.state`).
 */
export interface ThreadAgentOptions<O = unknown> extends AgentPolicyOptions {
  readonly name: string;
  /** The handler's module: a file URL (`new URL('./parse.js', import.meta.url)`) or an absolute path. */
  readonly module: URL | string;
  /** Optional; defaults to 'thread', the only isolation a module agent has for now. */
  readonly isolation?: 'thread';
  /** Worker threads in the agent's pool. Optional; defaults to 1. */
  readonly threads?: number;
  /** Bounds of each worker. Optional; defaults to Node's (a heap of about 2-4 GB). */
  readonly resourceLimits?: ThreadLimits;
  /**
   * How long a worker may take to load the module and run its `init()`. Optional; defaults to 30,000
   * ms. A worker that is not ready by then is terminated; if none ever was (or 3 in a row fail), every
   * run fails with ERR_INVALID_OPTION instead of waiting for it.
   */
  readonly startTimeoutMs?: number;
  /** As for any agent; runs in the pipeline's thread. */
  route?(output: O, ctx: TaskContext<undefined>): RouteResult;
}

/** What a thread agent's handler sees as `ctx` in its worker (no signal: a run that times out ends with its worker). */
export interface ThreadTaskContext<S = unknown> {
  readonly taskId: string;
  readonly key: string | undefined;
  readonly attempt: number;
  readonly stage: string;
  /** What the module's `init()` returned in this worker (undefined without one). */
  readonly state: S;
}

/** An agent definition: immutable data a pipeline turns into a supervised stage. */
export interface Agent<I = any, O = any, S = any> extends AgentOptions<I, O, S> {
  readonly kind: 'agent';
  /** Thread agents: the handler's module as a file URL (`handle` then only says it runs in a pipeline). */
  readonly module?: string;
  readonly isolation?: 'inline' | 'thread';
  readonly threads?: number;
  readonly resourceLimits?: ThreadLimits;
  readonly startTimeoutMs?: number;
}

/**
 * Defines an agent: an actor whose behaviour is a task handler `(input, ctx) => output`.
 * Validation happens here so a typo fails at definition, naming the agent and the option.
 */
export function agent<I, O, S = undefined>(options: AgentOptions<I, O, S>): Agent<I, O, S>;
export function agent<I, O>(options: ThreadAgentOptions<O>): Agent<I, O, undefined>;
export function agent<I, O, S = undefined>(options: AgentOptions<I, O, S> | ThreadAgentOptions<O>): Agent<I, O, S> {
  if (options === null || typeof options !== 'object') {
    throw new BatonError('ERR_INVALID_OPTION', `agent(options) needs an object with name and handle; got ${describe(options)}.`, { option: 'agent' });
  }
  assertName(options.name, 'agent name');
  if ('module' in options || 'isolation' in options) return threadAgent(options as ThreadAgentOptions<O>) as Agent<I, O, S>;
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

// handle and init are known so that their own message (they come from the module) is the one shown.
const THREAD_AGENT_KEYS = ['name', 'module', 'isolation', 'threads', 'resourceLimits', 'startTimeoutMs', 'route', 'handle', 'init', 'kind', ...AGENT_POLICY_KEYS];

const THREAD_LIMITS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb'] as const;

function threadAgent<O>(options: ThreadAgentOptions<O> & { readonly handle?: unknown; readonly init?: unknown }): Agent {
  const name = options.name;
  const bad = (option: string, value: unknown, expected: string): BatonError =>
    new BatonError('ERR_INVALID_OPTION', `agent '${name}': ${option} must be ${expected}; got ${describe(value)}.`, { option: `${name}.${option}`, value });
  if (options.isolation !== undefined && options.isolation !== 'thread') throw bad('isolation', options.isolation, "'thread' (or left out for an in-process handler)");
  if (options.module === undefined) {
    throw bad('module', undefined, "the file URL of the handler's module (new URL('./handler.js', import.meta.url)): a handler function cannot move to another thread");
  }
  for (const fn of ['handle', 'init'] as const) {
    if (options[fn] !== undefined) throw bad(fn, options[fn], `left out: a thread agent's ${fn} is the one its module exports`);
  }
  checkKeys(options, THREAD_AGENT_KEYS, `agent '${name}'`);
  const href = moduleHref(options.module, bad);
  const threads = options.threads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) throw bad('threads', threads, 'an integer from 1 to 256');
  const limits = options.resourceLimits;
  if (limits !== undefined) {
    if (limits === null || typeof limits !== 'object') throw bad('resourceLimits', limits, `an object with any of ${THREAD_LIMITS.join(', ')}`);
    for (const k of Object.keys(limits)) {
      const v = (limits as Record<string, unknown>)[k];
      if (!(THREAD_LIMITS as readonly string[]).includes(k)) throw bad(`resourceLimits.${k}`, v, `left out: the limits are ${THREAD_LIMITS.join(', ')}`);
      if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw bad(`resourceLimits.${k}`, v, 'a number of MB > 0');
    }
  }
  if (options.route !== undefined && typeof options.route !== 'function') throw bad('route', options.route, 'a function (output, ctx) => stage name(s) or null');
  const start = options.startTimeoutMs;
  if (start !== undefined && !(typeof start === 'number' && start >= 1 && start <= 2 ** 31 - 1)) throw bad('startTimeoutMs', start, 'a number of ms from 1 to 2147483647');
  return Object.freeze({
    ...options,
    kind: 'agent' as const,
    module: href,
    isolation: 'thread' as const,
    threads,
    // The stage calls `handle`; a pipeline replaces this one with its worker pool's.
    handle: (_input: unknown, _ctx: unknown): never => {
      throw new BatonError('ERR_INVALID_OPTION', `agent '${name}' runs in worker threads: put it in a pipeline (spawnPipeline) instead of calling its handle.`, { option: `${name}.handle` });
    },
  }) as Agent;
}

/** The module as a file URL string, checked to exist now, so a typo fails at definition. */
function moduleHref(module: unknown, bad: (option: string, value: unknown, expected: string) => BatonError): string {
  let url: URL;
  if (module instanceof URL) url = module;
  else if (typeof module === 'string' && module.startsWith('file:')) url = new URL(module);
  else if (typeof module === 'string' && isAbsolute(module)) url = pathToFileURL(module);
  else throw bad('module', module, "a file URL (new URL('./handler.js', import.meta.url)) or an absolute path");
  if (url.protocol !== 'file:') throw bad('module', module, 'a file: URL (worker threads load local files)');
  if (!existsSync(fileURLToPath(url))) throw bad('module', url.href, 'the URL of an existing file (compiled .js/.mjs, or .ts with tsx installed)');
  return url.href;
}
