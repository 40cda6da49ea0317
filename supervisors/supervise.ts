import type { AttemptError } from '../actors/envelope.js';
import { systemClock, type Clock } from '../src/clock.js';
import { BatonError, describe, invalidOption, toErrorInfo } from '../src/errors.js';
import { createLogger, type LoggerOption } from '../src/logging.js';
import { seededRandom, type Random } from '../src/random.js';
import { AGENT_INTENSITY, type RetryOptions } from './agent-policy.js';
import { backoff, calculateDelay, RETRY_BACKOFF } from './backoff.js';
import { breakerPolicy, CLOSED, NO_BREAKER, onFreshFailure, onProbeFailure, onSuccess, startProbe, type BreakerOptions, type BreakerState } from './breaker.js';
import { isAbort, isControlFlow } from './control-flow.js';
import { intensity, recordRestart, type RestartWindow } from './intensity.js';

/**
 * One agent supervisor's policies around any async function, for code whose graph belongs to a
 * framework (LangGraph, Mastra, an SDK's agent loop): retries with backoff, a fresh instance after
 * a failure, a per-attempt timeout, the poison/outage breaker and dead letters. The decisions are
 * the same pure functions the agent supervisor uses (calculateDelay, onFreshFailure, recordRestart...).
 */

/** What the task gets as its second argument: the caller's own context, with a `signal` that also fires on timeout. */
export type SupervisedContext<C> = (C extends object ? C : object) & { readonly signal: AbortSignal };

export type TaskFn<I, O, C> = (input: I, ctx: SupervisedContext<C>) => O | PromiseLike<O>;

/** A task, or a factory whose instance is rebuilt after every failure (fresh state, like an agent's init). */
export type SupervisedTask<I, O, C> = TaskFn<I, O, C> | { create(): TaskFn<I, O, C> | PromiseLike<TaskFn<I, O, C>> };

export interface SupervisedDeadLetter<I> {
  readonly name: string;
  readonly input: I;
  readonly error: BatonError;
  readonly attempts: number;
  readonly errors: readonly AttemptError[];
}

export interface SuperviseOptions<I, O> {
  /** Names the task in errors and logs. Optional; defaults to the function's name, else 'task'. */
  readonly name?: string;
  /** Optional; defaults to 3 attempts, 100 ms x2 up to 30 s, ±20% jitter (as agents). */
  readonly retry?: RetryOptions;
  /** Optional; defaults to threshold 5, probes after 1 s x2 up to 60 s. `false`: no breaker. */
  readonly breaker?: BreakerOptions | false;
  /** Rebuilds of a `{ create }` task after fresh failures. Optional; defaults to 10 within 60,000 ms; past it calls fail with ERR_ESCALATED until a success. */
  readonly restart?: { readonly maxRestarts?: number; readonly withinMs?: number };
  /** Per attempt. Optional; defaults to 60,000 ms. Infinity: none. */
  readonly timeoutMs?: number;
  /** Decides what a failure is. Optional; defaults to 'retry' for everything but control flow and aborts (always rethrown). */
  readonly classify?: (error: unknown) => 'retry' | 'fail' | 'rethrow';
  /** Told about every dead letter. Optional. A sink that throws is logged, never rethrown. */
  readonly onDeadLetter?: (deadLetter: SupervisedDeadLetter<I>) => void;
  /** Returned in place of a dead-lettered input (e.g. a LangGraph Command). Optional; without it the call rejects with ERR_TASK_FAILED. */
  readonly deadLetterValue?: (input: I, error: BatonError) => O | PromiseLike<O>;
  /** Optional; defaults to the real clock. */
  readonly clock?: Clock;
  /** A seed or a source for jitter. Optional; defaults to Math.random. */
  readonly random?: number | Random;
  /** pino logger, or false. Optional; defaults to Baton's stderr logger. */
  readonly logger?: LoggerOption;
}

/** The breaker is open: the call did not run. Let the framework's checkpoint hold the run and try later. */
export class CircuitOpenError extends BatonError {
  constructor(
    name: string,
    readonly retryInMs: number,
  ) {
    super('ERR_CIRCUIT_OPEN', `'${name}' is failing on every input (its breaker is open); the call did not run. Retry in ${Math.max(0, Math.round(retryInMs))} ms or later.`, { task: name, retryInMs });
    this.name = 'CircuitOpenError';
  }
}

export function supervise<I, O, C = { readonly signal?: AbortSignal }>(task: SupervisedTask<I, O, C>, options: SuperviseOptions<I, O> = {}): (input: I, ctx?: C) => Promise<O> {
  const isFactory = typeof task === 'object' && task !== null && typeof (task as { create?: unknown }).create === 'function';
  if (typeof task !== 'function' && !isFactory) {
    throw new BatonError('ERR_INVALID_OPTION', `supervise(task) needs a function (input, ctx) => output or { create() }; got ${describe(task)}.`, { option: 'task' });
  }
  const name = options.name ?? (typeof task === 'function' && task.name ? task.name : 'task');
  const maxAttempts = options.retry?.maxAttempts ?? 3;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw invalidOption(`${name}.retry.maxAttempts`, maxAttempts, 'an integer >= 1');
  const retryBackoff = backoff(options.retry?.backoff, RETRY_BACKOFF, `${name}.retry.backoff`);
  const breaker = options.breaker === false ? NO_BREAKER : breakerPolicy(options.breaker ?? {}, `${name}.breaker`);
  const limits = intensity(options.restart ?? {}, AGENT_INTENSITY, `${name}.restart`);
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(typeof timeoutMs === 'number' && timeoutMs > 0)) throw invalidOption(`${name}.timeoutMs`, timeoutMs, 'a number of milliseconds > 0 (or Infinity)');
  for (const fn of ['classify', 'onDeadLetter', 'deadLetterValue'] as const) {
    if (options[fn] !== undefined && typeof options[fn] !== 'function') throw invalidOption(`${name}.${fn}`, options[fn], 'a function');
  }
  const clock = options.clock ?? systemClock;
  const random: Random = typeof options.random === 'number' ? seededRandom(options.random) : (options.random ?? Math.random);
  const log = createLogger(options.logger).child({ task: name });

  let state: BreakerState = CLOSED;
  let window: RestartWindow = [];
  let instance: TaskFn<I, O, C> | undefined = isFactory ? undefined : (task as TaskFn<I, O, C>);
  let stale = isFactory; // a factory's instance is built on first use and after every failure

  const current = async (): Promise<TaskFn<I, O, C>> => {
    if (!stale) return instance!;
    instance = await (task as { create(): TaskFn<I, O, C> | PromiseLike<TaskFn<I, O, C>> }).create();
    stale = false;
    return instance;
  };

  /** One attempt, with its own timeout; resolves or rejects as the task does, or with ERR_TIMEOUT. */
  const attempt = async (fn: TaskFn<I, O, C>, input: I, ctx: C | undefined, caller: AbortSignal | undefined): Promise<O> => {
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort(caller!.reason);
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    let timer: ReturnType<Clock['setTimer']> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      if (timeoutMs === Infinity) return;
      timer = clock.setTimer(timeoutMs, () => {
        const err = new BatonError('ERR_TIMEOUT', `'${name}' took longer than ${timeoutMs} ms (timeoutMs); its late result will be discarded.`, { task: name });
        controller.abort(err);
        reject(err);
      });
    });
    const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }));
    try {
      const taskCtx = { ...(ctx as object | undefined), signal: controller.signal } as SupervisedContext<C>;
      return await Promise.race([Promise.resolve(fn(input, taskCtx)), timedOut, aborted]);
    } finally {
      timer?.cancel();
      caller?.removeEventListener('abort', onCallerAbort);
    }
  };

  const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        timer.cancel();
        reject(signal!.reason);
      };
      const timer = clock.setTimer(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  const deadLetter = async (input: I, errors: AttemptError[], attempts: number, why: string): Promise<O> => {
    const last = errors[errors.length - 1]!;
    const error = new BatonError('ERR_TASK_FAILED', `'${name}' ${why} after ${attempts} attempt(s); last error: ${last.error.message}`, { task: name, attempts, errors });
    log.warn({ attempts, error: last.error }, 'dead-lettered');
    try {
      options.onDeadLetter?.({ name, input, error, attempts, errors });
    } catch (err) {
      log.error({ err }, 'onDeadLetter threw; ignored');
    }
    if (options.deadLetterValue !== undefined) return options.deadLetterValue(input, error);
    throw error;
  };

  return async (input: I, ctx?: C): Promise<O> => {
    const caller = (ctx as { signal?: AbortSignal } | undefined)?.signal;
    const errors: AttemptError[] = [];
    let charged = 0;
    for (let run = 1; ; run++) {
      // The breaker: closed runs; open refuses until its probe time, when this call becomes the probe.
      let probe = false;
      if (state.status !== 'closed') {
        const now = clock.now();
        if (state.status === 'probing' || now < state.probeAt) throw new CircuitOpenError(name, state.status === 'open' ? state.probeAt - now : breaker.backoff.minMs);
        state = startProbe(state);
        probe = true;
      }
      let fn: TaskFn<I, O, C>;
      try {
        fn = await current();
      } catch (err) {
        if (probe) state = onProbeFailure(breaker, state, clock.now(), random);
        throw new BatonError('ERR_TASK_FAILED', `'${name}': create() threw: ${toErrorInfo(err).message}`, { task: name }, err);
      }
      try {
        const out = await attempt(fn, input, ctx, caller);
        state = onSuccess(state);
        window = [];
        return out;
      } catch (err) {
        if (isControlFlow(err) || isAbort(err, caller)) {
          if (probe) state = { status: 'open', probes: state.status === 'probing' ? state.probes : 0, openedAt: clock.now(), probeAt: clock.now() }; // not evidence either way: probe again at once
          throw err;
        }
        const verdict = options.classify?.(err) ?? 'retry';
        if (verdict === 'rethrow') {
          if (probe) state = onSuccess(state); // the task answered: the agent is up
          throw err;
        }
        const now = clock.now();
        stale = isFactory; // a fresh instance for the next attempt, as an agent restarts its worker
        const fresh = charged === 0;
        let charge = true;
        if (probe) {
          // As in the agent supervisor: a fresh probe failure is the agent's; a retried one, the input's.
          if (fresh) {
            state = onProbeFailure(breaker, state, now, random);
            charge = false;
          }
        } else if (state.status !== 'closed') {
          charge = false; // the breaker opened while this attempt ran: not this input's fault
        } else if (fresh) {
          state = onFreshFailure(breaker, state, now, random);
          if (state.status !== 'closed') charge = false; // this failure opened it: an outage, not poison
          const decision = recordRestart(limits, window, now);
          window = decision.window;
          if (!decision.restart) {
            throw new BatonError('ERR_ESCALATED', `'${name}' failed on more than ${limits.maxRestarts} fresh inputs within ${limits.withinMs} ms with no success between; last error: ${toErrorInfo(err).message}`, { task: name }, err);
          }
        }
        errors.push({ stage: name, attempt: run, at: now, charged: charge, error: toErrorInfo(err) });
        if (!charge) throw new CircuitOpenError(name, state.status === 'open' ? state.probeAt - now : 0);
        charged++;
        if (verdict === 'fail') return deadLetter(input, errors, charged, 'failed (classified as fail)');
        if (charged >= maxAttempts) return deadLetter(input, errors, charged, 'failed on every attempt');
        await sleep(calculateDelay(retryBackoff, charged, random), caller);
      }
    }
  };
}
