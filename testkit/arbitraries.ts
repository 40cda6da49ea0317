import fc from 'fast-check';
import { agent, type Agent, type TaskContext, type PipelineOptions } from '../system/index.js';
import type { Fault, FaultKind, FaultPlan } from './fault-plan.js';

/**
 * fast-check arbitraries for fault plans, pipeline shapes and workloads. Sizes are small on
 * purpose: bugs in supervision show up with a handful of tasks and stages, and small scenarios
 * shrink to readable counterexamples and run thousands of times a minute.
 */

export interface FaultPlanConstraints {
  /** The stage names faults may target. */
  readonly stages: readonly string[];
  /** Task ids poison may name. Optional; defaults to t0..t19. */
  readonly taskIds?: readonly string[];
  /** Kinds to draw from. Optional; defaults to all but kills' companion (see `kills`). */
  readonly kinds?: readonly FaultKind[];
  /** Faults per stage at most. Optional; defaults to 2. */
  readonly maxPerStage?: number;
  /** Poison at most this many tasks per stage. Optional; defaults to 3 (below the default breaker threshold of 5: more fresh poison in a row is, by design, indistinguishable from an outage). */
  readonly maxPoison?: number;
  /** Handler calls the plan's nth-call faults and kills range over. Optional; defaults to 40. */
  readonly calls?: number;
  /** Simulated time outages range over. Optional; defaults to 5,000 ms. */
  readonly horizonMs?: number;
  /** Draw up to this many kills (needs a journal). Optional; defaults to 0. */
  readonly maxKills?: number;
}

/** The kinds generated unless `kinds` says otherwise ('rate-limit' and 'spend' are asked for by name). */
const ALL_KINDS: readonly FaultKind[] = ['throw-on-call', 'poison', 'flaky', 'hang', 'delay', 'init-fails', 'outage'];

export function fault(c: Omit<FaultPlanConstraints, 'stages'> = {}): fc.Arbitrary<Fault> {
  const calls = c.calls ?? 40;
  const horizon = c.horizonMs ?? 5_000;
  const ids = c.taskIds ?? Array.from({ length: 20 }, (_, i) => `t${i}`);
  const make: Record<FaultKind, fc.Arbitrary<Fault>> = {
    'throw-on-call': fc.integer({ min: 1, max: calls }).map((call) => ({ kind: 'throw-on-call', call })),
    poison: fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1, maxLength: c.maxPoison ?? 3 }).map((taskIds) => ({ kind: 'poison', taskIds })),
    flaky: fc.constantFrom(0.1, 0.25, 0.5).map((p) => ({ kind: 'flaky', p })),
    hang: fc.integer({ min: 1, max: calls }).map((call) => ({ kind: 'hang', call })),
    delay: fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 150 })).map(([minMs, extra]) => ({ kind: 'delay', minMs, maxMs: minMs + extra })),
    'init-fails': fc.integer({ min: 1, max: 3 }).map((times) => ({ kind: 'init-fails', times })),
    // Mostly early and short enough to end: most generated work is done within a few hundred ms,
    // and an outage that starts after it finds nothing to break.
    outage: fc
      .tuple(fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 300 }) }, fc.integer({ min: 0, max: horizon })), fc.integer({ min: 1, max: horizon }))
      .map(([fromMs, len]) => ({ kind: 'outage', fromMs, toMs: fromMs + len })),
    // Not in the default kinds (ask for it with `kinds`): a storm of 429s, with or without Retry-After.
    'rate-limit': fc
      .record({ fromMs: fc.integer({ min: 0, max: 300 }), len: fc.integer({ min: 1, max: horizon }), retryAfterMs: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: undefined }), p: fc.constantFrom(0.25, 0.5, 1) })
      .map(({ fromMs, len, retryAfterMs, p }) => ({ kind: 'rate-limit', fromMs, toMs: fromMs + len, ...(retryAfterMs === undefined ? {} : { retryAfterMs }), p })),
    // Not in the default kinds either: every call costs tokens (for an agent's budget).
    spend: fc.integer({ min: 1, max: 500 }).map((tokens) => ({ kind: 'spend', tokens })),
  };
  return fc.oneof(...(c.kinds ?? ALL_KINDS).map((k) => make[k]));
}

/** A plan over the given stages: each stage gets 0..maxPerStage faults; some stages stay clean. */
export function faultPlan(c: FaultPlanConstraints): fc.Arbitrary<FaultPlan> {
  const perStage = fc.array(fault(c), { maxLength: c.maxPerStage ?? 2 });
  return fc
    .record({
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
      lists: fc.tuple(...c.stages.map(() => perStage)),
      kills: fc.uniqueArray(fc.integer({ min: 1, max: c.calls ?? 40 }), { maxLength: c.maxKills ?? 0 }),
    })
    .map(({ seed, lists, kills }) => {
      const stages: Record<string, readonly Fault[]> = {};
      c.stages.forEach((name, i) => {
        if (lists[i]!.length > 0) stages[name] = lists[i]!;
      });
      return { seed, stages, ...(kills.length > 0 ? { kills } : {}) };
    });
}

/** The shape of a generated pipeline: stage options and routing, turned into agents by `buildPipeline`. */
export interface PipelineShape {
  readonly stages: readonly StageShape[];
  /** Routed shapes skip stages, end early and fan out by the task's number. */
  readonly routed: boolean;
  /**
   * Only the first stage fans out (later ones send a task that would fan out to their next stage), as a
   * journal requires: there a branch routes to one stage. Optional; defaults to false.
   */
  readonly fanOutOnce?: boolean;
  readonly orderByKey: boolean;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
}

/** One generated stage: its name, concurrency, inbox capacity, and whether its handler is async. */
export interface StageShape {
  readonly name: string;
  readonly concurrency: number;
  readonly capacity: number;
  /** Handlers return a promise (else a plain value). */
  readonly async: boolean;
}

/** Bounds of the pipelines `arbitraries.pipelineShape` generates. */
export interface ShapeConstraints {
  /** Optional; defaults to 4. */
  readonly maxStages?: number;
  /**
   * Allow routed shapes: true (fan-out from any stage), 'journal' (fan-out from the first stage only,
   * the shapes a journaled pipeline runs), or false. Optional; defaults to true.
   */
  readonly routing?: boolean | 'journal';
}

export function pipelineShape(c: ShapeConstraints = {}): fc.Arbitrary<PipelineShape> {
  const stage = fc.record({ concurrency: fc.integer({ min: 1, max: 4 }), capacity: fc.integer({ min: 1, max: 8 }), async: fc.boolean() });
  return fc.record({
    stages: fc.array(stage, { minLength: 1, maxLength: c.maxStages ?? 4 }).map((list) => list.map((s, i) => ({ name: `s${i}`, ...s }))),
    routed: c.routing === false ? fc.constant(false) : fc.boolean(),
    ...(c.routing === 'journal' ? { fanOutOnce: fc.constant(true) } : {}),
    orderByKey: fc.boolean(),
    maxAttempts: fc.integer({ min: 1, max: 4 }),
    timeoutMs: fc.constantFrom(100, 250, 1_000),
  });
}

/** One generated task: its id, number and key travel as the payload, so any stage can name it. */
export interface WorkItem {
  readonly id: string;
  readonly n: number;
  readonly key: string;
}

/** Bounds of the workloads `arbitraries.workload` generates. */
export interface WorkloadConstraints {
  /** Optional; defaults to 20. */
  readonly maxTasks?: number;
  /** Optional; defaults to 4. */
  readonly maxKeys?: number;
}

export function workload(c: WorkloadConstraints = {}): fc.Arbitrary<WorkItem[]> {
  return fc
    .record({ tasks: fc.integer({ min: 1, max: c.maxTasks ?? 20 }), keys: fc.integer({ min: 1, max: c.maxKeys ?? 4 }), salt: fc.nat(1_000) })
    .map(({ tasks, keys, salt }) => Array.from({ length: tasks }, (_, n) => ({ id: `t${n}`, n, key: `k${(n * 7 + salt) % keys}` })));
}

/**
 * The agents and pipeline options for a shape. Handlers pass the work item on unchanged; one-parameter
 * handlers (linear shapes) keep Baton's fast lane, so generated runs cover it too. A routed stage sends
 * task n by n mod 5: 0 fans out to the next two stages, 1 skips one, 2 completes here, else the next.
 */
export function buildPipeline(shape: PipelineShape): { stages: Agent[]; options: Omit<PipelineOptions, 'name' | 'stages'> } {
  const names = shape.stages.map((s) => s.name);
  const stages = shape.stages.map((s, i) => {
    const common = { name: s.name, concurrency: s.concurrency, mailbox: { capacity: s.capacity } };
    const handle = s.async ? (x: WorkItem) => Promise.resolve(x) : (x: WorkItem) => x;
    if (!shape.routed) return agent<WorkItem, WorkItem>({ ...common, handle });
    const route = (x: WorkItem, _ctx: TaskContext<undefined>): string | string[] | null => {
      const rest = names.slice(i + 1);
      if (rest.length === 0) return null;
      switch (x.n % 5) {
        case 0:
          return shape.fanOutOnce === true && i > 0 ? rest[0]! : rest.slice(0, 2);
        case 1:
          return rest[1] ?? rest[0]!;
        case 2:
          return null;
        default:
          return rest[0]!;
      }
    };
    return agent<WorkItem, WorkItem>({ ...common, handle, route });
  });
  return {
    stages,
    options: {
      defaults: {
        orderByKey: shape.orderByKey,
        timeoutMs: shape.timeoutMs,
        retry: { maxAttempts: shape.maxAttempts, backoff: { minMs: 10, maxMs: 200, factor: 2, jitter: 0.2 } },
        // When every task left is fresh poison, poison and an outage look alike and the breaker would
        // hold forever (by design); generated outages end within 10 s, so after 30 s it is poison.
        breaker: { maxHoldMs: 30_000 },
      },
    },
  };
}

/** fast-check arbitraries for fault-testing a pipeline, and `buildPipeline` to turn a generated shape into one. */
export const arbitraries = {
  /** One fault of any kind, within the constraints. */
  fault,
  /** A fault plan over the given stages (and task ids, for poison). */
  faultPlan,
  /** A pipeline shape: 1-4 stages with their concurrency, capacity and sync/async handlers, routing, key order. */
  pipelineShape,
  /** A list of work items with ids and keys. */
  workload,
  /** The stages and pipeline options a generated shape describes. */
  buildPipeline,
} as const;
