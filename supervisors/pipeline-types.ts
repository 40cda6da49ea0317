import type { BudgetOptions } from '../policies/budget.js';
import type { Clock } from '../src/clock.js';
import type { EventStream } from '../src/events.js';
import type { Journal } from '../src/journal/journal.js';
import type { Logger } from '../src/logging.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { AgentPolicyOptions } from '../policies/agent-policy.js';
import type { StageStats } from './agent-supervisor.js';
import type { StrategyOptions } from '../policies/strategy.js';
import type { Agent } from '../actors/agent.js';

// The data a pipeline is made from and reports: its options, what send answers, its stats.

/** What `system.spawnPipeline` takes. */
export interface PipelineOptions {
  /** Unique in its system; the first segment of every stage's address (`legal/extract`). */
  readonly name: string;
  /** The agents, in order: by default each hands its output to the next. */
  readonly stages: readonly Agent[];
  /** Policies for every stage; an agent's own options override them field by field. Optional. */
  readonly defaults?: AgentPolicyOptions;
  /**
   * The pipeline supervisor's own intensity: a stage that escalates is restarted (inbox intact)
   * up to `maxRestarts` times within `withinMs`; beyond that the pipeline stops with ERR_PIPELINE_FAILED.
   * Optional; defaults to 3 within 60,000 ms, no backoff.
   */
  readonly supervisor?: StrategyOptions;
  /**
   * With a journal: how long a completed task's outcome is kept (for `outcome(id)` and for
   * recognising a re-sent id) before it is pruned. Dead letters are kept until replayed.
   * Optional; defaults to 24 hours.
   */
  readonly keepCompletedMs?: number;
  /**
   * One budget for the whole pipeline (a tenant's, a batch's): every stage's `ctx.spend` counts against
   * it, and once a window is spent every stage holds its tasks ('hold') or dead-letters them with
   * ERR_BUDGET_EXHAUSTED ('dead-letter'), beside any budget an agent has of its own. Optional; defaults
   * to none. In memory: the window starts again when the pipeline is spawned again.
   */
  readonly budget?: BudgetOptions;
}

/** Options of one `send`. */
export interface SendOptions {
  /** Tasks with the same key keep their order at stages with `orderByKey`. Optional. */
  readonly key?: string;
  /**
   * The task's id. Optional; defaults to `<pipeline>-<n>`, a form reserved for that (ERR_INVALID_OPTION).
   * A send whose id is pending, or known to the journal, is acknowledged ('duplicate') without a second task.
   */
  readonly id?: string;
}

/**
 * What `send` tells its caller: `accepted` (the task will get an outcome), `duplicate` (a task with
 * this id is already pending), `rejected` (the first inbox is full and its overflow policy is
 * 'reject': nothing was accepted), `dropped` (full with policy 'drop': accepted and dead-lettered at once).
 */
export type SendResult = 'accepted' | 'duplicate' | 'rejected' | 'dropped';

/** What `pipeline.stats()` returns: the pipeline's counts, its dead letters by reason, its journal's lag, and every stage's stats. */
export interface PipelineStats {
  readonly name: string;
  readonly status: 'running' | 'stopping' | 'stopped' | 'failed';
  readonly accepted: number;
  readonly pending: number;
  readonly completed: number;
  readonly deadLettered: number;
  /** Dead letters by the stage where they ended and their code (ERR_TASK_FAILED, ERR_TIMEOUT, ...). */
  readonly deadLetterReasons: readonly { readonly stage: string; readonly code: string; readonly count: number }[];
  /** With a journal: ops waiting for the next commit, and whether a commit is in flight (its lag). */
  readonly journal?: { readonly queuedOps: number; readonly committing: boolean };
  readonly stages: readonly StageStats[];
  /** With a pipeline budget: spent in its current window, and when it starts again if it is spent now. */
  readonly budget?: { readonly spent: { readonly tokens: number; readonly usd: number }; readonly resetsAt: number | undefined };
}

export interface PipelineDeps {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  readonly log: Logger;
  /** The system's journal, if it has one. */
  readonly journal?: Journal | undefined;
}
