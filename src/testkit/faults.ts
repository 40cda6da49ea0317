import type { Agent, RouteResult, TaskContext } from '../../actors/agent.js';
import { agent } from '../../actors/agent.js';
import { BatonError, describe } from '../errors.js';
import type { Clock } from '../clock.js';
import { seededRandom } from '../random.js';

/**
 * Fault plans: data that says how an agent misbehaves, and `apply`, which wraps agents so they do.
 * Plans are plain data (no closures, except a user's own `poison.match`), so fast-check can generate,
 * print and shrink them, and a printed plan replays the same run.
 */

/** One way a stage misbehaves. Times are simulated-clock milliseconds; calls count every run of the stage's handler, 1-based. */
export type Fault =
  /** The stage's nth handler call throws (whatever task it is running). */
  | { readonly kind: 'throw-on-call'; readonly call: number }
  /** Tasks with these ids (or matching `match`) fail every time they run here: poison. */
  | { readonly kind: 'poison'; readonly taskIds?: readonly string[]; readonly match?: (input: unknown, taskId: string | undefined) => boolean }
  /** Each call fails with probability `p`, drawn from the plan's seed. */
  | { readonly kind: 'flaky'; readonly p: number }
  /** The nth call never settles until its run is aborted (a timeout or a stop): exercises `timeoutMs`. */
  | { readonly kind: 'hang'; readonly call: number }
  /** Every call waits between minMs and maxMs of clock time before running. */
  | { readonly kind: 'delay'; readonly minMs: number; readonly maxMs: number }
  /** `init` throws the first `times` times it runs (an agent without `init` gets one). */
  | { readonly kind: 'init-fails'; readonly times: number }
  /** Every call that starts in [fromMs, toMs), or is still waiting out a `delay` then, fails: the agent's database is down. */
  | { readonly kind: 'outage'; readonly fromMs: number; readonly toMs: number };

export type FaultKind = Fault['kind'];

export interface FaultPlan {
  /** Seeds the `flaky` and `delay` draws. */
  readonly seed: number;
  /** Faults per stage name; stages not named run untouched. */
  readonly stages: Readonly<Record<string, readonly Fault[]>>;
  /**
   * Durable pipelines only: kill the pipeline (as a process kill would: nothing uncommitted
   * survives) when the whole pipeline has made this many handler calls, then spawn it again on
   * the same journal. Optional; defaults to none.
   */
  readonly kills?: readonly number[];
}

/** The error an injected fault throws; `fault` says which kind, so reports can tell an outage from poison. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
  /** `INJECTED_OUTAGE`, `INJECTED_POISON`, ...: kept in the task's error history, so reports can tell them apart. */
  readonly code: string;
  constructor(
    readonly fault: FaultKind,
    message: string,
  ) {
    super(message);
    this.code = `INJECTED_${fault.toUpperCase().replace(/-/g, '_')}`;
  }
}

/** One run of a wrapped handler, as the invariants see it. */
export interface HandlerCall {
  readonly stage: string;
  /** Undefined only for a one-parameter handler whose input carries no id (see ApplyOptions.taskIdOf). */
  readonly taskId: string | undefined;
  readonly attempt: number | undefined;
  /** Clock time at the start. */
  readonly at: number;
  /** Order among all starts and ends of the recording (a global sequence). */
  readonly startSeq: number;
  endSeq: number;
  /**
   * ok: returned a value Baton used; threw: failed (injected or the handler's own error); aborted:
   * its signal fired first (timeout, stop); late: it returned after its signal fired (discarded);
   * running: not settled when the recording ended.
   */
  result: 'running' | 'ok' | 'threw' | 'aborted' | 'late';
  /** The injected fault that failed it, if one did. */
  fault: FaultKind | undefined;
  /** Where the output went: the route's answer, or undefined for "the next stage in the list". */
  routed: readonly string[] | null | undefined;
}

/** The handler calls of a set of wrapped stages, in start order. */
export interface CallLog {
  readonly calls: HandlerCall[];
  /** Called at every start; the recorder uses it for kills and inbox samples. */
  onCall: ((call: HandlerCall) => void) | undefined;
}

export interface ApplyOptions {
  /** The clock that times `outage` and `delay` (the system's clock; a simulated one in tests). */
  readonly clock: Clock;
  /**
   * The task id of an input, for one-parameter handlers (which Baton gives no ctx, on its fast lane).
   * Optional; without it such handlers are wrapped with a ctx parameter, which moves them off that lane.
   */
  readonly taskIdOf?: (input: unknown) => string | undefined;
  /** Where calls are logged. Optional; defaults to a new log (see `callLog(stages)`). */
  readonly log?: CallLog;
}

const logs = new WeakMap<readonly Agent[], CallLog>();

/** The call log of stages returned by `apply`. */
export function callLog(stages: readonly Agent[]): CallLog {
  const log = logs.get(stages);
  if (log === undefined) throw new BatonError('ERR_INVALID_INPUT', 'callLog(stages) needs the array returned by faults.apply(plan, stages, options).');
  return log;
}

/** Wraps each agent named in the plan so it fails as the plan says; every handler call is logged. */
export function apply(plan: FaultPlan, stages: readonly Agent[], options: ApplyOptions): Agent[] {
  validatePlan(plan, stages);
  const log: CallLog = options.log ?? { calls: [], onCall: undefined };
  let seq = 0;
  const wrapped = stages.map((def, index) => {
    const faults = plan.stages[def.name] ?? [];
    const random = seededRandom((plan.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    let calls = 0;
    let inits = 0;
    const needsCtx = def.handle.length >= 2 || def.route !== undefined || options.taskIdOf === undefined || faults.some((f) => f.kind === 'hang' || f.kind === 'delay'); // these need the run's signal

    const run = (input: unknown, ctx: TaskContext<unknown> | undefined): unknown => {
      const call: HandlerCall = {
        stage: def.name,
        taskId: ctx?.taskId ?? options.taskIdOf?.(input),
        attempt: ctx?.attempt,
        at: options.clock.now(),
        startSeq: ++seq,
        endSeq: 0,
        result: 'running',
        fault: undefined,
        routed: undefined,
      };
      log.calls.push(call);
      log.onCall?.(call);
      const n = ++calls;
      const end = (result: HandlerCall['result'], fault?: FaultKind): void => {
        if (call.result !== 'running') return;
        call.result = ctx?.signal.aborted && result === 'ok' ? 'late' : result;
        call.fault = fault;
        call.endSeq = ++seq;
        // A call that ended stops listening: a signal shared by many calls (a user's own ctx in a
        // unit test) would otherwise gather one listener per call.
        ctx?.signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => end('aborted');
      ctx?.signal.addEventListener('abort', onAbort, { once: true });
      const injected = decide(faults, n, input, call.taskId, options.clock.now(), random);
      // Drawn on every call too, used or not (see decide).
      const delay = faults.find((f): f is Extract<Fault, { kind: 'delay' }> => f.kind === 'delay');
      const delayMs = delay === undefined ? 0 : delay.minMs + Math.floor(random() * (delay.maxMs - delay.minMs + 1));
      if (injected !== undefined && injected.kind !== 'hang') {
        end('threw', injected.kind);
        throw new InjectedFault(injected.kind, `injected ${injected.kind} at stage '${def.name}', call ${n}, task ${call.taskId ?? '?'}`);
      }
      if (injected?.kind === 'hang') {
        return new Promise((_, reject) => {
          const abort = (): void => reject(new InjectedFault('hang', `injected hang at stage '${def.name}', call ${n}: aborted`));
          if (ctx!.signal.aborted) abort();
          else ctx!.signal.addEventListener('abort', abort, { once: true });
        });
      }
      const go = (): unknown => {
        let out: unknown;
        try {
          out = ctx === undefined ? (def.handle as (i: unknown) => unknown)(input) : def.handle(input, ctx);
        } catch (err) {
          end('threw');
          throw err;
        }
        if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
          return Promise.resolve(out).then(
            (v) => (end('ok'), v),
            (err: unknown) => {
              end('threw');
              throw err;
            },
          );
        }
        end('ok');
        return out;
      };
      if (delay === undefined) return go();
      return new Promise<void>((resolve) => options.clock.setTimer(delayMs, resolve)).then(() => {
        // A call in flight when an outage begins fails too, as a request does when its database goes down.
        const now = options.clock.now();
        if (faults.some((f) => f.kind === 'outage' && now >= f.fromMs && now < f.toMs)) {
          end('threw', 'outage');
          throw new InjectedFault('outage', `injected outage at stage '${def.name}', call ${n}, task ${call.taskId ?? '?'} (in flight)`);
        }
        return go();
      });
    };

    const initFails = faults.find((f): f is Extract<Fault, { kind: 'init-fails' }> => f.kind === 'init-fails');
    const init =
      initFails === undefined
        ? def.init
        : () => {
            if (++inits <= initFails.times) throw new InjectedFault('init-fails', `injected init failure ${inits} of ${initFails.times} at stage '${def.name}'`);
            return def.init?.();
          };
    const route =
      def.route === undefined
        ? undefined
        : (output: unknown, ctx: TaskContext<unknown>): RouteResult => {
            const to = def.route!(output, ctx);
            const call = lastCall(log.calls, def.name, ctx.taskId);
            if (call !== undefined) call.routed = to === undefined ? null : typeof to === 'string' ? [to] : to;
            return to;
          };
    return agent({
      ...def,
      handle: needsCtx ? (input: unknown, ctx: TaskContext<unknown>) => run(input, ctx) : (input: unknown) => run(input, undefined),
      ...(init === undefined ? {} : { init }),
      ...(route === undefined ? {} : { route }),
    });
  });
  logs.set(wrapped, log);
  return wrapped;
}

/** The fault that decides this call, if any: the first that fires, in the plan's order. */
function decide(faults: readonly Fault[], n: number, input: unknown, taskId: string | undefined, now: number, random: () => number): Fault | undefined {
  // Every fault is asked on every call (the first that fires wins), so flaky draws happen whether or
  // not an earlier fault fired: dropping one fault while shrinking does not shift another's draws.
  let fired: Fault | undefined;
  for (const f of faults) {
    let fires = false;
    switch (f.kind) {
      case 'throw-on-call':
      case 'hang':
        fires = f.call === n;
        break;
      case 'poison':
        fires = (taskId !== undefined && f.taskIds?.includes(taskId)) || f.match?.(input, taskId) === true;
        break;
      case 'flaky':
        fires = random() < f.p;
        break;
      case 'outage':
        fires = now >= f.fromMs && now < f.toMs;
        break;
      default:
        break;
    }
    if (fires && fired === undefined) fired = f;
  }
  return fired;
}

function lastCall(calls: readonly HandlerCall[], stage: string, taskId: string): HandlerCall | undefined {
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i]!;
    if (c.stage === stage && c.taskId === taskId) return c;
  }
  return undefined;
}

function validatePlan(plan: FaultPlan, stages: readonly Agent[]): void {
  if (plan === null || typeof plan !== 'object' || typeof plan.stages !== 'object' || plan.stages === null) {
    throw new BatonError('ERR_INVALID_OPTION', `faults.apply needs a plan { seed, stages: { [stage]: Fault[] } }; got ${describe(plan)}.`, { option: 'plan' });
  }
  if (!Number.isInteger(plan.seed)) throw new BatonError('ERR_INVALID_OPTION', `fault plan seed must be an integer; got ${describe(plan.seed)}.`, { option: 'plan.seed' });
  const names = new Set(stages.map((s) => s.name));
  for (const [name, faults] of Object.entries(plan.stages)) {
    if (!names.has(name)) {
      throw new BatonError('ERR_INVALID_OPTION', `fault plan names stage '${name}', which is not one of the stages given (${[...names].join(', ')}); fix the name or drop it.`, { option: `plan.stages.${name}` });
    }
    for (const [i, f] of faults.entries()) {
      const bad = (why: string): never => {
        throw new BatonError('ERR_INVALID_OPTION', `fault plan stages.${name}[${i}] ${describe(f)}: ${why}.`, { option: `plan.stages.${name}[${i}]` });
      };
      switch (f?.kind) {
        case 'throw-on-call':
        case 'hang':
          if (!(Number.isInteger(f.call) && f.call >= 1)) bad('call must be an integer >= 1');
          break;
        case 'poison':
          if (f.taskIds === undefined && f.match === undefined) bad('give taskIds or match');
          break;
        case 'flaky':
          if (!(f.p >= 0 && f.p <= 1)) bad('p must be a probability in [0, 1]');
          break;
        case 'delay':
          if (!(f.minMs >= 0 && f.maxMs >= f.minMs)) bad('need 0 <= minMs <= maxMs');
          break;
        case 'init-fails':
          if (!(Number.isInteger(f.times) && f.times >= 0)) bad('times must be an integer >= 0');
          break;
        case 'outage':
          if (!(f.fromMs >= 0 && f.toMs >= f.fromMs)) bad('need 0 <= fromMs <= toMs');
          break;
        default:
          bad('kind must be one of throw-on-call, poison, flaky, hang, delay, init-fails, outage');
      }
    }
  }
  for (const k of plan.kills ?? []) {
    if (!(Number.isInteger(k) && k >= 1)) throw new BatonError('ERR_INVALID_OPTION', `fault plan kills must be handler-call counts >= 1; got ${describe(k)}.`, { option: 'plan.kills' });
  }
}

/** Factories that read like the plan they make. */
export const faults = {
  apply,
  callLog,
  throwOnCall: (call: number): Fault => ({ kind: 'throw-on-call', call }),
  poison: (which: readonly string[] | ((input: unknown, taskId: string | undefined) => boolean)): Fault =>
    typeof which === 'function' ? { kind: 'poison', match: which } : { kind: 'poison', taskIds: which },
  flaky: (p: number): Fault => ({ kind: 'flaky', p }),
  hang: (call: number): Fault => ({ kind: 'hang', call }),
  delay: (minMs: number, maxMs = minMs): Fault => ({ kind: 'delay', minMs, maxMs }),
  initFails: (times: number): Fault => ({ kind: 'init-fails', times }),
  outage: (fromMs: number, toMs: number): Fault => ({ kind: 'outage', fromMs, toMs }),
} as const;
