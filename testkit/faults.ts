import { type Agent, type RouteResult, type TaskContext, agent, BatonError, type Clock, seededRandom } from '../system/index.js';
import { decide, InjectedFault, validatePlan, type Fault, type FaultKind, type FaultPlan } from './fault-plan.js';

/**
 * `apply` wraps agents so they misbehave as a fault plan (fault-plan.ts) says, and logs every handler
 * call for the invariants; `faults` builds plans that read like what they do.
 */

/** One run of a wrapped handler, as the invariants see it. */
export interface HandlerCall {
  readonly stage: string;
  /**
   * The task's id (with a journal, a fan-out branch runs as `<id>#fan<i>`: its task's id is reported).
   * Undefined only for a one-parameter handler whose input carries no id (see ApplyOptions.taskIdOf).
   */
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
  /**
   * What it reported it cost (a `spend` fault), when (clock time), and where in the recording's
   * sequence of starts and ends (`seq`, to order it against starts in the same millisecond).
   */
  spent?: { readonly tokens: number; readonly usd: number; readonly at: number; readonly seq: number };
}

/** The handler calls of a set of wrapped stages, in start order. */
export interface CallLog {
  readonly calls: HandlerCall[];
  /** Called at every start; the recorder uses it for kills and inbox samples. */
  onCall: ((call: HandlerCall) => void) | undefined;
}

/** Options of `faults.apply(plan, agents, options)`. */
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
    const needsCtx = def.handle.length >= 2 || def.route !== undefined || options.taskIdOf === undefined || faults.some((f) => f.kind === 'hang' || f.kind === 'delay' || f.kind === 'spend'); // these need the run's signal (or ctx.spend)
    const spends = faults.find((f): f is Extract<Fault, { kind: 'spend' }> => f.kind === 'spend');

    const run = (input: unknown, ctx: TaskContext<unknown> | undefined): unknown => {
      const call: HandlerCall = {
        stage: def.name,
        taskId: taskOf(ctx?.taskId) ?? options.taskIdOf?.(input),
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
        const fault = new InjectedFault(injected.kind, `injected ${injected.kind} at stage '${def.name}', call ${n}, task ${call.taskId ?? '?'}`);
        // A refusal for rate looks like an HTTP client's 429: the stage's default rules read it so.
        if (injected.kind === 'rate-limit') throw Object.assign(fault, { status: 429, ...(injected.retryAfterMs === undefined ? {} : { retryAfterMs: injected.retryAfterMs }) });
        throw fault;
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
        if (spends !== undefined && ctx !== undefined) {
          const cost = { tokens: spends.tokens ?? 0, usd: spends.usd ?? 0 };
          call.spent = { ...cost, at: options.clock.now(), seq: ++seq };
          ctx.spend(cost);
        }
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
            const call = lastCall(log.calls, def.name, taskOf(ctx.taskId));
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

/** The id of the task a run belongs to: a journaled fan-out branch `<id>#fan<i>` belongs to `<id>`. */
function taskOf<T extends string | undefined>(runId: T): T {
  return (runId === undefined ? undefined : runId.replace(/#fan\d+$/, '')) as T;
}

function lastCall(calls: readonly HandlerCall[], stage: string, taskId: string | undefined): HandlerCall | undefined {
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i]!;
    if (c.stage === stage && c.taskId === taskId) return c;
  }
  return undefined;
}

/** Factories that read like the plan they make. */
/** Fault injection: `faults.apply(plan, agents)` and one factory per kind of fault. */
export const faults = {
  /** Wraps agents so their handlers fail as the plan says, and logs every call. Throws ERR_INVALID_OPTION for a bad plan. */
  apply,
  /** The log of handler calls of agents that `apply` wrapped. */
  callLog,
  /** The stage's handler throws on its call number `call` (1 = the first). */
  throwOnCall: (call: number): Fault => ({ kind: 'throw-on-call', call }),
  /** These task ids (or the inputs a predicate picks) fail every time: poison. */
  poison: (which: readonly string[] | ((input: unknown, taskId: string | undefined) => boolean)): Fault =>
    typeof which === 'function' ? { kind: 'poison', match: which } : { kind: 'poison', taskIds: which },
  /** Each call fails with probability `p` (seeded by the plan). */
  flaky: (p: number): Fault => ({ kind: 'flaky', p }),
  /** Call number `call` never settles until its signal aborts (a timeout or a restart). */
  hang: (call: number): Fault => ({ kind: 'hang', call }),
  /** Every call waits minMs..maxMs on the clock first. */
  delay: (minMs: number, maxMs = minMs): Fault => ({ kind: 'delay', minMs, maxMs }),
  /** The agent's init throws its first `times` runs. */
  initFails: (times: number): Fault => ({ kind: 'init-fails', times }),
  /** Every call in [fromMs, toMs) of clock time fails, and calls in flight when it begins fail too. */
  outage: (fromMs: number, toMs: number): Fault => ({ kind: 'outage', fromMs, toMs }),
  /** Calls starting in [fromMs, toMs) are refused with HTTP 429 (Retry-After `retryAfterMs`, if given), each with probability `p` (default 1). */
  rateLimit: (fromMs: number, toMs: number, retryAfterMs?: number, p?: number): Fault => ({ kind: 'rate-limit', fromMs, toMs, ...(retryAfterMs === undefined ? {} : { retryAfterMs }), ...(p === undefined ? {} : { p }) }),
  /** Every call costs `cost` (`ctx.spend`) when it reaches the handler: for an agent's `budget`. */
  spend: (cost: { readonly tokens?: number; readonly usd?: number }): Fault => ({ kind: 'spend', ...cost }),
} as const;
