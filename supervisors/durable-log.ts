import { decode, encode } from '../src/codec.js';
import type { JournalOp, PipelineJournal, StoredTask } from '../src/journal/journal.js';
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
}

/**
 * A pipeline's side of the journal: it groups the changes of one event-loop turn into one
 * transaction (group commit), runs the callbacks that must wait for durability (send's promise,
 * outcome delivery) after it, and pages a recovered backlog from disk into each stage's inbox so
 * memory holds only what the inbox bounds allow.
 */
export class DurableLog {
  private ops: JournalOp[] = [];
  private after: ((err?: Error) => void)[] = [];
  private scheduled = false;
  private nextCommit: Promise<void> | undefined = undefined;
  private lastPrune = 0;
  private readonly backlogs = new Map<string, Backlog>();
  /** Per stage, the runs in progress when the previous process stopped writing (read once, at recovery). */
  private crashed = new Map<string, { ids: Set<string>; isolated: boolean }>();
  /** Ids of tasks held in memory, so a page from disk never loads one twice. */
  readonly live = new Set<string>();
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
    /** Told once, when a commit fails; returns the error every waiter gets from then on. */
    private readonly onError: (err: Error) => Error,
  ) {}

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

  /**
   * Commits now (a stage calls this before it starts a batch: attempts are recorded before handlers
   * run). False if the journal failed, now or before: nothing may then run as if recorded.
   */
  flush(): boolean {
    if (this.ops.length === 0 && this.after.length === 0) return this.failure === undefined;
    const ops = this.ops;
    const after = this.after;
    this.ops = [];
    this.after = [];
    this.nextCommit = undefined;
    let error: Error | undefined = this.failure;
    if (error === undefined) {
      try {
        this.journal.commit(ops);
      } catch (err) {
        this.log.error({ err }, 'journal commit failed');
        error = this.failure = this.onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
    for (const fn of after) fn(error);
    this.maybePrune();
    return error === undefined;
  }

  encode(value: unknown, what: string): Uint8Array {
    return encode(value, what);
  }

  encodeErrors(errors: readonly AttemptError[] | undefined): Uint8Array {
    return encode(errors ?? [], 'error history');
  }

  // ---- recovery ------------------------------------------------------------------------------

  /** Reads, once, which runs were in progress when the journal was last written. */
  noteCrashedRuns(): void {
    this.crashed = this.journal.runningAtCrash();
  }

  /** Notes a stage's pending tasks on disk (at start); they are paged in by `page`. */
  addBacklog(stage: string, upTo: number): void {
    this.backlogs.set(stage, { after: 0, upTo });
  }

  hasAnyBacklog(): boolean {
    return this.backlogs.size > 0;
  }

  hasBacklog(stage: string): boolean {
    return this.backlogs.has(stage);
  }

  /** Loads up to `room` pending tasks of `stage` from disk, in accepted order. */
  page(stage: string, room: number, keyOrdered = false): PagedTask[] {
    const b = this.backlogs.get(stage);
    if (b === undefined || room <= 0) return [];
    const rows = this.journal.pendingAt(stage, b.after, b.upTo, room);
    if (rows.length < room) {
      this.backlogs.delete(stage);
      if (this.backlogs.size === 0) this.journal.recovered();
    }
    if (rows.length > 0) b.after = rows[rows.length - 1]!.seq;
    const out: PagedTask[] = [];
    const crashed = this.crashed.get(stage);
    // Fresh tasks first, then those that failed here before (see AgentSupervisor.adopt); a stage
    // that keeps per-key order takes them in accepted order, which that order is made of.
    if (!keyOrdered) rows.sort((x, y) => Number(x.attempts > 0) - Number(y.attempts > 0) || x.seq - y.seq);
    for (const row of rows) {
      if (this.live.has(row.id)) continue;
      this.live.add(row.id);
      const running = crashed?.ids.delete(row.id) ? (crashed.isolated ? 'isolated' : 'suspect') : 'no';
      out.push({ env: envelopeOf(row), running });
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
    try {
      const n = this.journal.pruneCompleted(now - this.keepCompletedMs);
      if (n > 0) this.log.debug({ pruned: n }, 'pruned completed tasks');
    } catch (err) {
      this.log.warn({ err }, 'pruning completed tasks failed; will try again');
    }
  }
}

export function envelopeOf(row: StoredTask): Envelope {
  const env = new Envelope(row.id, row.seq, row.key, decode(row.payload));
  env.attempts = row.attempts;
  if (row.errors !== undefined) env.errors = decode<AttemptError[]>(row.errors);
  return env;
}
