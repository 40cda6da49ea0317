/**
 * What a backend answers: at once (memory, SQLite through better-sqlite3) or later (a remote
 * journal such as NATS JetStream, where a commit is a round trip). The runtime takes either and
 * pays for a promise only when it gets one.
 */
export type Later<T> = T | PromiseLike<T>;

/** Whether a backend's answer is still to come. */
export function isLater<T>(value: Later<T>): value is PromiseLike<T> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<T>).then === 'function';
}

/**
 * Where accepted tasks live until they have an outcome: the journal port. A journal is shared by
 * the pipelines of a system; each pipeline works on its own part (`openPipeline`). The runtime
 * (supervisors/durable-log.ts) talks to a pipeline's part through `PipelineJournal` only: group
 * commits, recovery reads and paging. Synchronous backends (memory, SQLite) answer at once, so
 * "recorded before the handler starts" costs no promise; an asynchronous one answers `commit`,
 * `pendingAt` and `pruneCompleted` with promises, and the runtime waits for them (a stage runs a
 * batch only after the commit that records its start). Every backend passes the same contract
 * suite (test/contract/).
 */
export interface Journal<P extends PipelineJournal = PipelineJournal> {
  /** 'memory', 'sqlite' or 'nats'. */
  readonly kind: string;
  /** true when tasks survive the process (SQLite, NATS); false for memory. */
  readonly durable: boolean;
  /** Wall-clock ms for finishedAt and retention (Date.now unless the journal was given another). */
  now(): number;
  /** The part of the journal that holds pipeline `name`'s tasks (made on first use). */
  openPipeline(name: string): P;
  /** Pipelines with tasks in the journal, for tools. */
  pipelines(): string[];
  /**
   * Closes the journal (the system does it at shutdown, and waits). A SQLite journal releases its
   * file lock at once; a NATS journal waits for its writes in flight, then closes its connection.
   */
  close(): Later<void>;
}

/** Where a task stands in the journal. */
export type TaskStatus = 'pending' | 'completed' | 'dead';

/** A pending task as stored. */
export interface StoredTask {
  readonly id: string;
  readonly seq: number;
  readonly key: string | undefined;
  readonly stage: string;
  readonly payload: Uint8Array;
  /** Attempts charged at its current stage. */
  readonly attempts: number;
  /** msgpack of AttemptError[], or undefined. */
  readonly errors: Uint8Array | undefined;
}

/** A finished task as stored. */
export interface StoredOutcome {
  readonly id: string;
  readonly key: string | undefined;
  readonly status: 'completed' | 'dead';
  readonly stage: string;
  readonly attempts: number;
  readonly output: Uint8Array | undefined;
  readonly errors: Uint8Array | undefined;
  /** For dead letters: the code of the last error. */
  readonly code: string | undefined;
  /** Wall-clock ms (Date.now()) when it finished. */
  readonly finishedAt: number;
}

/** One change; a commit applies a list of them in order, atomically. */
export type JournalOp =
  | { readonly op: 'accept'; readonly id: string; readonly seq: number; readonly key: string | undefined; readonly stage: string; readonly payload: Uint8Array }
  /**
   * The runs in progress at `stage` are now `ids` (written before any new one starts). One row per
   * stage instead of a mark per task: a batch of 64 starts costs one statement.
   */
  | { readonly op: 'start'; readonly stage: string; readonly ids: readonly string[]; readonly isolated?: boolean }
  /** A handoff: the task moves to its next stage with the output as its payload. */
  | { readonly op: 'move'; readonly id: string; readonly stage: string; readonly payload: Uint8Array }
  /** A failed run: attempts at this stage and the error history so far. */
  | { readonly op: 'fail'; readonly id: string; readonly attempts: number; readonly errors: Uint8Array }
  | { readonly op: 'complete'; readonly id: string; readonly stage: string; readonly attempts: number; readonly output: Uint8Array; readonly at: number }
  | { readonly op: 'dead'; readonly id: string; readonly stage: string; readonly attempts: number; readonly code: string; readonly errors: Uint8Array; readonly at: number }
  /** A dead letter sent back to its stage (after a fix): pending again, attempts reset. */
  | { readonly op: 'replay'; readonly id: string }
  /**
   * A pending task is removed without an outcome: a branch of a fanned-out task whose result its
   * join record now holds (supervisors/fan-join.ts). Ignored for a task that is not pending.
   */
  | { readonly op: 'drop'; readonly id: string }
  /**
   * A small value the runtime keeps across restarts under `key` (a stage's breaker: open until when),
   * as text; null forgets it.
   */
  | { readonly op: 'state'; readonly key: string; readonly value: string | null };

/**
 * One pipeline's part of a journal, as the runtime uses it. Contract (test/contract/journal.ts):
 * - `commit(ops)` applies the ops in order, atomically: after a crash either all of them hold or
 *   none. The runtime has at most one commit in flight per pipeline and groups what arrives
 *   meanwhile into the next one. A commit that fails (throws or rejects) fails the pipeline.
 * - `accept` of an id already held is ignored; ops on a task that is no longer pending are ignored
 *   (but `replay` of a dead letter); `start` replaces the stage's set of runs in progress.
 * - `pendingAt` pages a stage's pending tasks in seq order; `pendingStages`, `runningAtCrash` and
 *   `lastSeq` tell recovery where the previous process stopped.
 * - The reads the runtime makes while running (`status`, `task`, `outcome`, `deadLetters`, `counts`)
 *   answer at once: an asynchronous backend answers them from what it holds in the process.
 */
export interface PipelineJournal {
  readonly name: string;
  /** The highest seq used so far (0 when empty): new tasks continue from here. */
  lastSeq(): number;
  /** The status of the task with this id, or undefined if the journal does not hold it. */
  status(id: string): TaskStatus | undefined;
  /** A pending task by id. */
  task(id: string): StoredTask | undefined;
  /** Pending tasks at `stage` with seq in (afterSeq, upToSeq], in seq order, at most `limit`. */
  pendingAt(stage: string, afterSeq: number, upToSeq: number, limit: number): Later<StoredTask[]>;
  /** For recovery: each stage's pending count and highest seq. */
  pendingStages(): Map<string, { count: number; maxSeq: number }>;
  /** Applies the ops in order, atomically; may answer later (an asynchronous backend). */
  commit(ops: readonly JournalOp[]): Later<void>;
  /** Every backlog of this pipeline is loaded (a backend may drop what it built for paging). */
  recovered(): void;
  /**
   * For recovery: per stage, the runs that were in progress when the journal was last written, and
   * whether that run was isolated (a suspect run alone after an earlier crash).
   */
  runningAtCrash(): Map<string, { ids: Set<string>; isolated: boolean }>;
  /** Forgets the runs in progress (a clean stop: nothing died mid-run). */
  releaseRunning(): void;
  /** The stored outcome of a finished task, or undefined while it is pending or unknown. */
  outcome(id: string): StoredOutcome | undefined;
  /** Dead letters, oldest first. */
  deadLetters(limit: number, offset: number): StoredOutcome[];
  /** Deletes completed tasks that finished before `before` (wall-clock ms); dead letters stay. Returns the count. */
  pruneCompleted(before: number): Later<number>;
  /** How many of this pipeline's tasks are pending, completed (until pruned) and dead. */
  counts(): { pending: number; completed: number; dead: number };
  /** The value last committed under `key` by a `state` op, or undefined. */
  state(key: string): string | undefined;
}

/** A backend that answers everything at once (memory, SQLite): what tools and tests read directly. */
export interface SyncPipelineJournal extends PipelineJournal {
  pendingAt(stage: string, afterSeq: number, upToSeq: number, limit: number): StoredTask[];
  /** Applies the ops in order, atomically, before it returns. */
  commit(ops: readonly JournalOp[]): void;
  pruneCompleted(before: number): number;
}
