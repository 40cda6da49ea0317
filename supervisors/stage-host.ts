import type { Envelope } from '../actors/envelope.js';
import type { Clock } from '../src/clock.js';
import type { BatonError, ErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Mailbox } from '../src/mailbox.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { BreakerState } from '../policies/breaker.js';
import type { StageStore } from './stage-store.js';

// What a stage and its pipeline say to each other, and the stage's stats.

/** A stage as another stage sees it: somewhere to hand a task on to. */
export interface StageInbox {
  readonly name: string;
  readonly inbox: Mailbox<Envelope>;
  readonly terminated: boolean;
  /** Takes a task in. The caller checked `inbox.hasRoom()` (senders) or is returning work. */
  enqueue(env: Envelope): void;
}

/** What a stage needs from its pipeline. Stages are named by their name within the pipeline. */
export interface StageHost {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  /** The stage's view of the pipeline's journal (MEMORY_STORE without one). */
  storeFor(stage: string): StageStore;
  taskId(env: Envelope): string;
  stageNamed(name: string): StageInbox | undefined;
  /**
   * With a journal: records that `env` fans out from stage `from` to the stages `to` (checked: known,
   * distinct) with its output encoded in env.bytes, and returns the branches for the caller to hand on
   * (one per stage, in order; none when the host sends them itself: a distributed pipeline), or a
   * BatonError saying why it cannot (a branch fanning out again across processes).
   */
  fanOut(env: Envelope, from: string, to: readonly string[], output: unknown): Envelope[] | BatonError;
  /** The task left the pipeline's last stage (or a route returned null). */
  complete(env: Envelope, output: unknown, stage: string, attempts: number): void;
  /** The task is quarantined. */
  deadLetter(env: Envelope, stage: string, code: string, error: ErrorInfo, attempts: number): void;
  /** The stage ended with the task unfinished: dead-lettered without a journal, left pending in one. */
  abandon(env: Envelope, stage: string, code: string, error: ErrorInfo): void;
}

/** A stage's counters: plain fields, since the hot path bumps `received` and `completed` once per task. */
export class StageCounts {
  received = 0;
  completed = 0;
  failed = 0;
  retried = 0;
  restarts = 0;
  deadLettered = 0;
}

/** One stage's counts and state, as `pipeline.stats().stages` reports them. */
export interface StageStats {
  readonly name: string;
  /** Tasks that entered this stage's inbox. */
  readonly received: number;
  /** Handler runs that succeeded. */
  readonly completed: number;
  /** Handler runs that threw, rejected or timed out. */
  readonly failed: number;
  readonly retried: number;
  readonly restarts: number;
  readonly deadLettered: number;
  /** Tasks waiting here: the inbox, retries waiting out their backoff, tasks held for their key. */
  readonly inbox: number;
  /** Of those, the ones in the inbox proper: never more than `capacity` (senders wait, or the overflow policy applies). */
  readonly queued: number;
  /** The inbox's bound (mailbox.capacity). */
  readonly capacity: number;
  readonly inFlight: number;
  readonly breaker: BreakerState['status'];
  /** 'held' after a rate-limit refusal (until `throttledUntil`), 'probing' while the first run after it tests the server. */
  readonly throttle: 'open' | 'held' | 'probing';
  /** While held: the clock instant the hold ends. */
  readonly throttledUntil: number | undefined;
  /** What its runs reported (ctx.spend) in the budget's current window (all time without a budget); undefined if nothing. */
  readonly spent: { readonly tokens: number; readonly usd: number } | undefined;
  /** While the budget is spent: the clock instant it starts again. */
  readonly budgetResetsAt: number | undefined;
  /** A budget per key: what each key spent in its current window (only keys that spent in one). */
  readonly spentByKey?: readonly { readonly key: string | undefined; readonly tokens: number; readonly usd: number }[];
  readonly status: 'starting' | 'running' | 'suspended' | 'terminated';
}

export type Status = StageStats['status'];
