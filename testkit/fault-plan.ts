import { type Agent, BatonError, describeValue as describe } from '../system/index.js';

/**
 * Fault plans as data: how an agent misbehaves, checked by `validatePlan` and decided call by call by
 * `decide`. Plans are plain data (no closures, except a user's own `poison.match`), so fast-check can
 * generate, print and shrink them, and a printed plan replays the same run. faults.ts applies them.
 */

/** One way a stage misbehaves. Times are simulated-clock milliseconds; calls count every run of the stage's handler, 1-based. */
export type Fault =
  /** The stage's nth handler call throws (whatever task it is running). */
  | { readonly kind: 'throw-on-call'; readonly call: number }
  /** Tasks with these ids (or matching `match`) fail every time they run here: poison. */
  | {
      readonly kind: 'poison';
      readonly taskIds?: readonly string[];
      /** Poison by content: the inputs for which this returns true fail every time (instead of, or beside, `taskIds`). */
      readonly match?: (input: unknown, taskId: string | undefined) => boolean;
    }
  /** Each call fails with probability `p`, drawn from the plan's seed. */
  | { readonly kind: 'flaky'; readonly p: number }
  /** The nth call never settles until its run is aborted (a timeout or a stop): exercises `timeoutMs`. */
  | { readonly kind: 'hang'; readonly call: number }
  /** Every call waits between minMs and maxMs of clock time before running. */
  | { readonly kind: 'delay'; readonly minMs: number; readonly maxMs: number }
  /** `init` throws the first `times` times it runs (an agent without `init` gets one). */
  | { readonly kind: 'init-fails'; readonly times: number }
  /** Every call that starts in [fromMs, toMs), or is still waiting out a `delay` then, fails: the agent's database is down. */
  | { readonly kind: 'outage'; readonly fromMs: number; readonly toMs: number }
  /**
   * Calls that start in [fromMs, toMs) are refused for rate, each with probability `p` (drawn from the
   * plan's seed; optional, defaults to 1): an error with status 429 and `retryAfterMs` (none: the
   * server named no delay), which the stage's default rules read as a rate-limit refusal.
   */
  | { readonly kind: 'rate-limit'; readonly fromMs: number; readonly toMs: number; readonly retryAfterMs?: number; readonly p?: number }
  /**
   * Every call that gets as far as the handler costs this much (`ctx.spend`), reported when it gets
   * there (after any `delay`: a model call is billed when it answers). Not a failure: it exercises an
   * agent's `budget`. Each of `tokens` and `usd` optional.
   */
  | { readonly kind: 'spend'; readonly tokens?: number; readonly usd?: number };

/** A fault's kind: throw-on-call, poison, flaky, hang, delay, init-fails, outage, rate-limit or spend. */
export type FaultKind = Fault['kind'];

/** What goes wrong, and when, as plain data: printable, replayable and shrinkable by fast-check. */
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

/** The fault that decides this call, if any: the first that fires, in the plan's order. */
export function decide(faults: readonly Fault[], n: number, input: unknown, taskId: string | undefined, now: number, random: () => number): Fault | undefined {
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
      case 'rate-limit': {
        const draw = random(); // drawn on every call, fired or not (see above)
        fires = now >= f.fromMs && now < f.toMs && draw < (f.p ?? 1);
        break;
      }
      default:
        break;
    }
    if (fires && fired === undefined) fired = f;
  }
  return fired;
}

/** Throws ERR_INVALID_OPTION naming the bad part of a plan. */
export function validatePlan(plan: FaultPlan, stages: readonly Agent[]): void {
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
        case 'rate-limit':
          if (!(f.fromMs >= 0 && f.toMs >= f.fromMs)) bad('need 0 <= fromMs <= toMs');
          if (f.retryAfterMs !== undefined && !(f.retryAfterMs >= 0)) bad('retryAfterMs must be a number of ms >= 0');
          if (f.p !== undefined && !(f.p >= 0 && f.p <= 1)) bad('p must be a probability in [0, 1]');
          break;
        case 'spend':
          for (const k of ['tokens', 'usd'] as const) {
            const v = f[k];
            if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) bad(`${k} must be a number >= 0`);
          }
          break;
        default:
          bad('kind must be one of throw-on-call, poison, flaky, hang, delay, init-fails, outage, rate-limit, spend');
      }
    }
  }
  for (const k of plan.kills ?? []) {
    if (!(Number.isInteger(k) && k >= 1)) throw new BatonError('ERR_INVALID_OPTION', `fault plan kills must be handler-call counts >= 1; got ${describe(k)}.`, { option: 'plan.kills' });
  }
}
