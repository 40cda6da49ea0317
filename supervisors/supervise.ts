import type { AttemptError } from '../actors/envelope.js';
import { BatonError, describe, toErrorInfo } from '../src/errors.js';
import { runAttempt, sleep, untilAborted, withinDeadline } from './attempt.js';
import { calculateDelay } from '../policies/backoff.js';
import { chargesProbe, CLOSED, onFreshFailure, onProbeFailure, onSuccess, probeAgainNow, startProbe, type BreakerState } from '../policies/breaker.js';
import { isAbort, isControlFlow } from './control-flow.js';
import { recordRestart, type RestartWindow } from '../policies/intensity.js';
import { classifyError, type ErrorClass } from '../policies/error-class.js';
import { holdDelay } from '../policies/rate-limit.js';
import { settings, type FailureVerdict, type SupervisedContext, type SupervisedTask, type Supervised, type SuperviseOptions, type TaskFn } from './supervise-options.js';

/** A failure sorted: what to do, and for 'wait' how long the server asked. */
type Verdict = { readonly verdict: FailureVerdict | 'outage' } | { readonly verdict: 'wait'; readonly retryAfterMs: number | undefined };

export type { FailureVerdict, SupervisedContext, SupervisedDeadLetter, SupervisedTask, Supervised, SuperviseOptions, TaskFn } from './supervise-options.js';

/**
 * One agent supervisor's policies around any async function, for code whose graph belongs to a
 * framework (LangGraph, Mastra, an SDK's agent loop): retries with backoff, a fresh instance after
 * a failure, a per-attempt timeout, the poison/outage breaker and dead letters. The policy is the
 * agent's own (agentPolicy: same defaults, same validation) and every decision is one of the pure
 * functions the agent supervisor calls (calculateDelay, onFreshFailure, onProbeFailure, chargesProbe,
 * onSuccess, recordRestart). The difference: a call is one input's whole life, so "back to the
 * inbox, uncharged" becomes "throw CircuitOpenError" and the framework's checkpoint holds the input.
 */

/** The breaker is open: the framework's checkpoint should hold the run; call again after `retryInMs`. */
export class CircuitOpenError extends BatonError {
  readonly retryInMs: number;
  /** `cause`: the failure that met the outage (this call ran and was not charged); none: the call did not run. */
  constructor(task: string, retryInMs: number, cause?: unknown) {
    const ms = Math.max(0, Math.round(retryInMs));
    const what = cause === undefined ? 'the call did not run' : `this call's failure (${toErrorInfo(cause).message}) counts against the outage, not the input`;
    super('ERR_CIRCUIT_OPEN', `'${task}' is failing on every input, so its breaker is open and ${what}. Let the checkpoint hold the run and call again in ${ms} ms or later.`, { task, retryInMs: ms }, cause);
    this.name = 'CircuitOpenError';
    this.retryInMs = ms;
  }
}

/**
 * Wraps one async function (a LangGraph node, a tool call) in the agent supervisor's policies: retries
 * with backoff, the breaker (a CircuitOpenError while it is open), dead letters (`onDeadLetter`,
 * `deadLetterValue`) and restart intensity (ERR_ESCALATED). Returns a function with the task's own
 * signature. Throws ERR_INVALID_OPTION for bad options. See docs/interop.md.
 * @example
 * const summarise = supervise(callModel, { retry: { maxAttempts: 3 }, timeoutMs: 30_000 });
 * const text = await summarise(doc);
 */
export function supervise<I, O, C = { readonly signal?: AbortSignal }>(task: SupervisedTask<I, O, C>, options: SuperviseOptions<I, O> = {}): Supervised<I, O, C> {
  const factory = typeof task === 'object' && task !== null && typeof (task as { create?: unknown }).create === 'function' ? task : undefined;
  if (typeof task !== 'function' && factory === undefined) {
    throw new BatonError('ERR_INVALID_OPTION', `supervise(task) needs a function (input, ctx) => output or { create() } returning one; got ${describe(task)}.`, { option: 'task', value: task });
  }
  const { name, policy, clock, random, log } = settings(task, options as SuperviseOptions<never, unknown>);

  let state: BreakerState = CLOSED;
  let window: RestartWindow = []; // counted restarts since the last success (agent: this.window)
  let instance: TaskFn<I, O, C> | undefined = factory === undefined ? (task as TaskFn<I, O, C>) : undefined;
  let building: Promise<TaskFn<I, O, C>> | undefined; // one create() at a time, shared by concurrent calls

  const escalated = (err: unknown): BatonError => {
    const { maxRestarts, withinMs } = policy.intensity;
    log.error({ error: toErrorInfo(err) }, 'escalated');
    return new BatonError(
      'ERR_ESCALATED',
      `'${name}' escalated: more than ${maxRestarts} restarts within ${withinMs} ms with no success between, so it looks unable to run at all; last error: ${toErrorInfo(err).message}. Fix what it depends on (or raise restart.maxRestarts); the next call tries again.`,
      { task: name },
      err,
    );
  };

  /**
   * create() throwing is an agent's init throwing: counted toward intensity, run again after the
   * restart backoff (100, 200, 400 ms...). Two bounds keep a call from waiting forever: create()
   * has timeoutMs to finish (a hung one is a failure), and more than maxRestarts failures in a row
   * escalate even when the growing backoff spreads them wider than withinMs.
   */
  const build = async (make: () => TaskFn<I, O, C> | PromiseLike<TaskFn<I, O, C>>): Promise<TaskFn<I, O, C>> => {
    for (let failures = 1; ; failures++) {
      let made: unknown;
      try {
        made = await withinDeadline(make, policy.timeoutMs, clock, () => new BatonError('ERR_TIMEOUT', `'${name}': create() took longer than timeoutMs (${policy.timeoutMs} ms)`, { task: name }));
      } catch (err) {
        const decision = recordRestart(policy.intensity, window, clock.now());
        window = decision.window;
        if (!decision.restart || failures > policy.intensity.maxRestarts) throw escalated(err);
        const delayMs = calculateDelay(policy.restartBackoff, failures, random);
        log.warn({ error: toErrorInfo(err), retryInMs: delayMs }, 'create() threw; building again after a backoff');
        await sleep(clock, delayMs, undefined);
        continue;
      }
      if (typeof made === 'function') return made as TaskFn<I, O, C>;
      throw new BatonError('ERR_INVALID_OPTION', `'${name}': create() returned ${describe(made)}; return the task function (input, ctx) => output, or a promise of one.`, { option: `${name}.create`, value: made });
    }
  };

  const instanceFor = (caller: AbortSignal | undefined): TaskFn<I, O, C> | Promise<TaskFn<I, O, C>> => {
    if (instance !== undefined) return instance;
    building ??= build(() => factory!.create()).then(
      (fn) => ((building = undefined), (instance = fn)),
      (err: unknown) => {
        building = undefined;
        throw err;
      },
    );
    return untilAborted(building, caller);
  };

  /** false: run; true: run as the breaker's probe; throws CircuitOpenError while it holds. */
  const admit = (): boolean => {
    if (state.status === 'closed') return false;
    const now = clock.now();
    if (state.status === 'open' && now >= state.probeAt) {
      state = startProbe(state);
      return true;
    }
    throw new CircuitOpenError(name, retryIn(now));
  };

  /** For CircuitOpenError.retryInMs: the probe time; while a probe runs nobody knows more, so the first probe wait (1 s by default). */
  const retryIn = (now: number): number => (state.status === 'open' ? state.probeAt - now : policy.breaker.backoff.minMs);

  /** The probe ended with no verdict on the task (or one against its input): probe again at once, as the agent supervisor does after a charged probe. */
  const probeNow = (): void => {
    state = probeAgainNow(state, clock.now());
  };

  const opened = (now: number): void => {
    if (state.status === 'open') log.warn({ probeInMs: state.probeAt - now, probes: state.probes }, 'breaker opened');
  };

  const succeeded = (probe: boolean): void => {
    // While the breaker is open only its probe speaks for the task: a call that started before the
    // outage and ends well says nothing about now (the agent supervisor makes the same check).
    if (!probe && state.status !== 'closed') return;
    if (state.status !== 'closed') log.info({ heldMs: clock.now() - state.openedAt }, 'breaker closed');
    state = onSuccess(state);
    window = [];
  };

  /**
   * Control flow and aborts pass; otherwise classify's verdict, or the agents' default rules. A broken
   * classify is the caller's bug: ERR_INVALID_OPTION. An error class is mapped to a verdict here:
   * terminal -> 'fail', transient -> 'retry', rate-limited -> 'wait' (with the server's delay), outage
   * -> 'outage'.
   */
  const sort = (err: unknown, caller: AbortSignal | undefined): Verdict => {
    if (isControlFlow(err) || isAbort(err, caller)) return { verdict: 'rethrow' };
    let verdict: unknown = undefined;
    if (options.classify !== undefined) {
      try {
        verdict = options.classify(err);
      } catch (thrown) {
        throw new BatonError('ERR_INVALID_OPTION', `${name}.classify threw (${toErrorInfo(thrown).message}) while sorting "${toErrorInfo(err).message}"; it must return 'retry', 'fail', 'rethrow', an error class, or undefined.`, { option: `${name}.classify` }, err);
      }
    }
    if (verdict === 'retry' || verdict === 'fail' || verdict === 'rethrow') return { verdict };
    let cls: { kind: ErrorClass; retryAfterMs?: number };
    if (verdict === undefined) cls = classifyError(err, clock.now());
    else if (verdict === 'terminal' || verdict === 'transient' || verdict === 'rate-limited' || verdict === 'outage') {
      cls = verdict === 'rate-limited' ? classifyError(err, clock.now()) : { kind: verdict };
      if (verdict === 'rate-limited' && cls.kind !== 'rate-limited') cls = { kind: 'rate-limited' };
    } else {
      throw new BatonError('ERR_INVALID_OPTION', `${name}.classify returned ${describe(verdict)} for "${toErrorInfo(err).message}"; return 'retry', 'fail', 'rethrow', an error class ('terminal', 'transient', 'rate-limited', 'outage') or undefined.`, { option: `${name}.classify`, value: verdict }, err);
    }
    if (cls.kind === 'terminal') return { verdict: 'fail' };
    if (cls.kind === 'rate-limited') return { verdict: 'wait', retryAfterMs: cls.retryAfterMs };
    if (cls.kind === 'outage') return { verdict: 'outage' };
    return { verdict: 'retry' };
  };

  // A rate-limit refusal holds every call of this function until `heldUntil` (as a stage holds its inbox).
  let heldUntil = 0;
  let refusals = 0;

  const deadLetter = async (input: I, errors: AttemptError[], classified: boolean): Promise<O> => {
    const attempts = errors.length;
    const last = errors[attempts - 1]!.error;
    const why = classified ? `classify called attempt ${attempts}'s error 'fail'` : `every one of ${attempts} attempt(s) failed`;
    const error = new BatonError(
      'ERR_TASK_FAILED',
      `'${name}' gave up on input ${describe(input)}: ${why}; last error: ${last.message}. It is a dead letter: fix the input (or the task) and call again; details.errors has every attempt.`,
      { task: name, input, attempts, errors },
    );
    log.warn({ attempts, error: last }, 'dead-lettered');
    try {
      const r = options.onDeadLetter?.({ name, input, error, attempts, errors }) as unknown;
      if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') (r as PromiseLike<unknown>).then(undefined, (err: unknown) => log.error({ error: toErrorInfo(err) }, 'onDeadLetter rejected; ignored'));
    } catch (err) {
      log.error({ error: toErrorInfo(err) }, 'onDeadLetter threw; ignored');
    }
    if (options.deadLetterValue !== undefined) {
      try {
        return options.deadLetterValue(input, error);
      } catch (err) {
        // Contained like onDeadLetter: the caller still learns that its input was dead-lettered.
        log.error({ error: toErrorInfo(err) }, 'deadLetterValue threw; the dead letter is thrown instead');
      }
    }
    throw error;
  };

  return async (input: I, ctx?: C): Promise<O> => {
    const caller = (ctx as { signal?: AbortSignal } | null | undefined)?.signal;
    const errors: AttemptError[] = []; // charged attempts only: an uncharged failure ends the call
    for (let run = 1; ; run++) {
      if (caller?.aborted) throw caller.reason; // nothing runs for a caller that has left
      if (clock.now() < heldUntil) await sleep(clock, heldUntil - clock.now(), caller);
      const probe = admit();
      let fn: TaskFn<I, O, C>;
      try {
        const got = instanceFor(caller);
        fn = typeof got === 'function' ? got : await got;
      } catch (err) {
        if (probe) probeNow();
        throw err;
      }
      try {
        const out = await runAttempt((signal) => fn(input, { ...(ctx as object | undefined), signal } as SupervisedContext<C>), { name, timeoutMs: policy.timeoutMs, clock, caller });
        succeeded(probe);
        refusals = 0;
        return out;
      } catch (err) {
        let sorted: Verdict;
        try {
          sorted = sort(err, caller);
        } catch (bad) {
          if (probe) probeNow();
          throw bad;
        }
        const verdict = sorted.verdict;
        if (verdict === 'rethrow') {
          if (probe) probeNow(); // not evidence either way: no breaker effect
          throw err;
        }
        if (verdict === 'wait') {
          // The server asked us to slow down: nobody is charged, every call waits, then this one runs again.
          if (probe) probeNow();
          refusals++;
          const now = clock.now();
          heldUntil = Math.max(heldUntil, now + holdDelay(sorted.retryAfterMs, refusals, random));
          log.info({ retryInMs: heldUntil - now, refusals }, 'rate-limited; holding calls');
          run--;
          continue;
        }
        const now = clock.now();
        if (instance === fn && factory !== undefined) instance = undefined; // a fresh instance next, as an agent's worker restarts
        // Sorted as the agent supervisor sorts a run's failure (the table in docs/architecture.md).
        const fresh = errors.length === 0;
        let charge = true;
        let againstAgent = false;
        if (verdict === 'fail') {
          if (probe) probeNow(); // the caller says the input is bad: charged, no breaker effect
        } else if (verdict === 'outage' && !probe && state.status === 'closed' && policy.breaker.threshold !== Infinity) {
          // The dependency says it is down: open the breaker at once (threshold 1 for this failure).
          againstAgent = true;
          charge = false;
          state = onFreshFailure({ ...policy.breaker, threshold: 1 }, state, now, random);
          opened(now);
        } else if (probe) {
          // A probe that failed before, or one past maxHoldMs, is charged and the next probe runs at once.
          // (A call has no identity across calls: past maxHoldMs every failed probe counts as a repeat.)
          if (!fresh || chargesProbe(policy.breaker, state, now, true)) probeNow();
          else {
            charge = false;
            state = onProbeFailure(policy.breaker, state, now, random);
            opened(now);
          }
        } else if (state.status !== 'closed') {
          charge = false; // the breaker opened while this attempt ran: the outage's fault, not this input's
        } else if (fresh) {
          againstAgent = true;
          state = onFreshFailure(policy.breaker, state, now, random);
          charge = state.status === 'closed'; // the failure that opens the breaker is not charged
          opened(now);
        }
        if (againstAgent) {
          const decision = recordRestart(policy.intensity, window, now);
          window = decision.window;
          if (!decision.restart) throw escalated(err);
        }
        if (!charge) throw new CircuitOpenError(name, retryIn(now), err);
        errors.push({ stage: name, attempt: run, at: now, charged: true, error: toErrorInfo(err) });
        if (verdict === 'fail' || errors.length >= policy.maxAttempts) return deadLetter(input, errors, verdict === 'fail');
        // Retry default: 100 ms before attempt 2, 200 ms before attempt 3 (each ±20%).
        await sleep(clock, calculateDelay(policy.retryBackoff, errors.length, random), caller);
      }
    }
  };
}
