import { decode, encode } from '../src/codec.js';
import { toErrorInfo, type ErrorInfo } from '../src/errors.js';
import { isLater, type JournalOp, type Later, type PipelineJournal, type StoredTask } from '../src/journal/journal.js';
import type { Logger } from '../src/logging.js';
import { Envelope, type AttemptError } from '../actors/envelope.js';

/** A task paged in from the journal, and whether it was running when the process died (alone: 'isolated'). */
export interface PagedTask {
  readonly env: Envelope;
  readonly running: 'no' | 'suspect' | 'isolated';
}

/** Where a stage's backlog on disk stands: tasks with seq in (after, upTo] are not loaded yet. */
interface Backlog {
  after: number;
  readonly upTo: number;
  /** A page was asked for and has not arrived (asynchronous backends): ask for no other. */
  paging: boolean;
}

/**
 * A pipeline's side of the journal port: it groups the changes of one event-loop turn into one
 * commit (group commit), runs the callbacks that must wait for durability (send's promise, outcome
 * delivery, a stage's batch) after it, and pages a recovered backlog into each stage's inbox so
 * memory holds only what the inbox bounds allow. The backend may answer at once or later (see
 * src/journal/journal.ts): at most one commit is in flight, and what is pushed meanwhile waits for
 * the next, so a synchronous backend sees exactly the commits it saw before the port.
 */
export class DurableLog {
  private ops: JournalOp[] = [];
  private after: ((err?: Error) => void)[] = [];
  private scheduled = false;
  /** A commit was handed to an asynchronous backend and has not answered yet. */
  private inFlight = false;
  private nextCommit: Promise<void> | undefined = undefined;
  private lastPrune = 0;
  private readonly backlogs = new Map<string, Backlog>();
  /** Per stage, the runs in progress when the previous process stopped writing (read once, at recovery). */
  private crashed = new Map<string, { ids: Set<string>; isolated: boolean }>();
  /** Ids of tasks held in memory, so a page from disk never loads one twice. */
  readonly live = new Set<string>();
  /**
   * Told of every task brought in from the journal's backlog (paged in, at a stage that is gone,
   * cancelled there); false: it is not to run (a fan-out branch whose end is already recorded).
   */
  adoptRow: (env: Envelope) => boolean = () => true;
  private failure: Error | undefined = undefined;
  private readonly flushSoon = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    readonly journal: PipelineJournal,
    private readonly wall: () => number,
    private readonly keepCompletedMs: number,
    private readonly log: Logger,
    /** Told after each commit the backend took: how many writes, in how many wall-clock ms. */
    private readonly onCommitted: (ops: number, ms: number) => void,
    /** Told once, when a commit fails; returns the error every waiter gets from then on. */
    private readonly onError: (err: Error) => Error,
  ) {}

  /** The journal's wall clock (ms). */
  wallNow(): number {
    return this.wall();
  }

  push(op: JournalOp): void {
    this.ops.push(op);
    this.schedule();
  }

  /** Runs `fn` after the commit that holds every op pushed so far (with the error, if it failed). */
  afterCommit(fn: (err?: Error) => void): void {
    this.after.push(fn);
    this.schedule();
  }

  /** A promise for the next commit: one per turn, shared by every send of that turn. */
  committed(): Promise<void> {
    return (this.nextCommit ??= new Promise<void>((resolve, reject) => this.afterCommit((err) => (err ? reject(err) : resolve()))));
  }

  /** Ops waiting for the next commit, and whether a commit is in flight: how far the journal lags. */
  lag(): { queuedOps: number; committing: boolean } {
    return { queuedOps: this.ops.length, committing: this.inFlight };
  }

  /** Resolves once everything pushed so far is committed (or the journal failed). */
  idle(): Promise<void> {
    if (this.ops.length === 0 && this.after.length === 0 && !this.inFlight) return Promise.resolve();
    return this.committed().catch(() => undefined);
  }

  /**
   * Records `op` and calls `then(true)` once it is committed, `then(false)` if the journal failed
   * (now or before: nothing may then run as if recorded). A stage records the start of a batch
   * this way before any handler of it runs. A synchronous backend commits now, so `then` runs
   * before this returns; an asynchronous one calls it when its commit answers.
   */
  record(op: JournalOp, then: (ok: boolean) => void): void {
    this.ops.push(op);
    this.after.push((err) => then(err === undefined));
    this.flush();
  }

  /** Hands everything pushed so far to the backend now, unless a commit is in flight (then it goes next). */
  flush(): void {
    if (this.inFlight || (this.ops.length === 0 && this.after.length === 0)) return;
    const ops = this.ops;
    const after = this.after;
    this.ops = [];
    this.after = [];
    this.nextCommit = undefined;
    if (this.failure !== undefined) return this.done(after, this.failure);
    let answer: Later<void>;
    const t0 = performance.now();
    try {
      answer = ops.length === 0 ? undefined : this.journal.commit(ops);
    } catch (err) {
      return this.done(after, this.fail(err));
    }
    if (!isLater(answer)) {
      if (ops.length > 0) this.onCommitted(ops.length, performance.now() - t0);
      return this.done(after, undefined);
    }
    this.inFlight = true;
    answer.then(
      () => {
        this.onCommitted(ops.length, performance.now() - t0);
        this.answered(after, undefined);
      },
      (err: unknown) => this.answered(after, this.fail(err)),
    );
  }

  encode(value: unknown, what: string): Uint8Array {
    return encode(value, what);
  }

  encodeErrors(errors: readonly AttemptError[] | undefined): Uint8Array {
    return encode(errors ?? [], 'error history');
  }

  private answered(after: ((err?: Error) => void)[], error: Error | undefined): void {
    this.inFlight = false;
    this.done(after, error);
    this.flush(); // what was pushed while this commit was in flight
  }

  private done(after: ((err?: Error) => void)[], error: Error | undefined): void {
    for (const fn of after) fn(error);
    this.maybePrune();
  }

  /** Something the journal answered later failed (a page, a recovery read): the pipeline fails as for a failed commit. */
  failWith(err: unknown): void {
    this.fail(err);
  }

  /** The journal failed: told once (the pipeline fails); every later waiter gets the same error. */
  private fail(err: unknown): Error {
    if (this.failure !== undefined) return this.failure;
    this.log.error({ err }, 'journal commit failed');
    return (this.failure = this.onError(err instanceof Error ? err : new Error(String(err))));
  }

  // ---- recovery ------------------------------------------------------------------------------

  /** Reads, once, which runs were in progress when the journal was last written. */
  noteCrashedRuns(): void {
    this.crashed = this.journal.runningAtCrash();
  }

  /** Notes a stage's pending tasks on disk (at start); they are paged in by `page`. */
  addBacklog(stage: string, upTo: number): void {
    this.backlogs.set(stage, { after: 0, upTo, paging: false });
  }

  hasAnyBacklog(): boolean {
    return this.backlogs.size > 0;
  }

  /** Tasks of `stage` are still in the journal, not yet paged in. */
  hasBacklog(stage: string): boolean {
    return this.backlogs.has(stage);
  }

  /** A page of `stage` may be asked for now (it has a backlog and no page on its way). */
  canPage(stage: string): boolean {
    const b = this.backlogs.get(stage);
    return b !== undefined && !b.paging;
  }

  /**
   * Asks for up to `room` pending tasks of `stage`, in accepted order, and gives them to `take`: at
   * once from a synchronous backend, when they arrive from an asynchronous one. Fresh tasks come
   * first, then those that failed here before (see StageBacklog.adopt); a stage that keeps per-key
   * order takes them in accepted order, which that order is made of.
   */
  page(stage: string, room: number, keyOrdered: boolean, take: (tasks: PagedTask[]) => void): void {
    const b = this.backlogs.get(stage);
    if (b === undefined || b.paging || room <= 0) return;
    const rows = this.journal.pendingAt(stage, b.after, b.upTo, room);
    if (!isLater(rows)) return take(this.paged(stage, b, rows, room, keyOrdered));
    b.paging = true;
    rows.then(
      (r) => {
        b.paging = false;
        take(this.paged(stage, b, r, room, keyOrdered));
      },
      (err: unknown) => {
        b.paging = false;
        this.fail(err);
      },
    );
  }

  private paged(stage: string, b: Backlog, rows: StoredTask[], room: number, keyOrdered: boolean): PagedTask[] {
    if (rows.length < room) {
      this.backlogs.delete(stage);
      if (this.backlogs.size === 0) this.journal.recovered();
    }
    if (rows.length > 0) b.after = rows[rows.length - 1]!.seq;
    const out: PagedTask[] = [];
    const crashed = this.crashed.get(stage);
    if (!keyOrdered) rows.sort((x, y) => Number(x.attempts > 0) - Number(y.attempts > 0) || x.seq - y.seq);
    for (const row of rows) {
      if (this.live.has(row.id)) continue;
      const env = envelopeOf(row);
      if (!this.adoptRow(env)) continue;
      this.live.add(row.id);
      const running = crashed?.ids.delete(row.id) ? (crashed.isolated ? 'isolated' : 'suspect') : 'no';
      out.push({ env, running });
    }
    return out;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushSoon);
  }

  private maybePrune(): void {
    const now = this.wall();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const logged = (n: number): void => {
      if (n > 0) this.log.debug({ pruned: n }, 'pruned completed tasks');
    };
    const failed = (err: unknown): void => this.log.warn({ err }, 'pruning completed tasks failed; will try again');
    try {
      const n = this.journal.pruneCompleted(now - this.keepCompletedMs);
      if (isLater(n)) n.then(logged, failed);
      else logged(n);
    } catch (err) {
      failed(err);
    }
  }
}

/**
 * A stored task as an envelope. A row whose payload or history does not decode (a damaged file, bytes
 * written by something else) gives an envelope with `corrupt` set: the stage dead-letters it with
 * ERR_JOURNAL_CORRUPT instead of failing every start (one bad row made every restart throw and
 * nothing recovered). Its raw bytes stay in the journal row for an operator.
 */
export function envelopeOf(row: StoredTask): Envelope & { corrupt?: ErrorInfo } {
  let payload: unknown;
  let errors: AttemptError[] | undefined;
  let corrupt: ErrorInfo | undefined;
  try {
    payload = decode(row.payload);
  } catch (err) {
    corrupt = corruptInfo(row, 'payload', err);
  }
  try {
    if (row.errors !== undefined) errors = decode<AttemptError[]>(row.errors);
  } catch (err) {
    corrupt ??= corruptInfo(row, 'error history', err);
  }
  const env: Envelope & { corrupt?: ErrorInfo } = new Envelope(row.id, row.seq, row.key, payload);
  env.attempts = row.attempts;
  if (errors !== undefined) env.errors = errors;
  if (corrupt !== undefined) env.corrupt = corrupt;
  return env;
}

function corruptInfo(row: StoredTask, what: string, err: unknown): ErrorInfo {
  return {
    name: 'BatonError',
    code: 'ERR_JOURNAL_CORRUPT',
    message: `the journal's ${what} of task ${row.id} (at stage '${row.stage}') cannot be read: ${toErrorInfo(err).message}; its raw bytes are left in the journal row`,
  };
}
