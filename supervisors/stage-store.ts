import type { Envelope } from '../actors/envelope.js';
import type { DurableLog, PagedTask } from './durable-log.js';

/**
 * What a stage records about its tasks, behind one interface: nothing (a pipeline without a
 * journal: `MEMORY_STORE`, whose every method is free) or the pipeline's journal (`JournalStore`).
 * The stage never asks which backend the journal has; it only asks `journaled` where it would
 * otherwise encode or write for nothing (the in-memory hot path).
 * Contract (journaled): `recordStart` calls back `then(true)` only once the start is committed, so
 * every run the stage then starts is recorded first (a synchronous backend calls back before
 * `recordStart` returns, an asynchronous one later); `then(false)` means the journal failed and
 * nothing may run as if recorded. `page` likewise gives its tasks now or later, one page at a time.
 */
export interface StageStore {
  readonly journaled: boolean;
  /** Encodes a stage's output into `env.bytes` (throws ERR_INVALID_INPUT for what the journal cannot hold). */
  encodeOutput(env: Envelope, output: unknown, what: string): void;
  /** A run of `env` failed: its attempts and history so far. */
  recordFailure(id: string, env: Envelope): void;
  /** `env` moves on to stage `to` with its encoded output. */
  recordMove(id: string, env: Envelope, to: string): void;
  /** The runs in progress here are now `ids`: calls `then` once that is committed (or failed). */
  recordStart(ids: readonly string[], isolated: boolean, then: (ok: boolean) => void): void;
  /** The suspect's isolated run ended: nothing runs alone here any more. */
  endIsolation(): void;
  /** Tasks of this stage are still in the journal, not yet paged in. */
  hasBacklog(): boolean;
  /** A page may be asked for now: there is a backlog and no page on its way. */
  canPage(): boolean;
  /** Gives `take` up to `room` tasks of this stage's backlog, in accepted order (keyOrdered) or fresh first. */
  page(room: number, keyOrdered: boolean, take: (tasks: PagedTask[]) => void): void;
}

/** A pipeline without a journal: nothing is encoded or recorded; tasks are passed by reference. */
export const MEMORY_STORE: StageStore = Object.freeze({
  journaled: false,
  encodeOutput: () => undefined,
  recordFailure: () => undefined,
  recordMove: () => undefined,
  recordStart: (_ids: readonly string[], _isolated: boolean, then: (ok: boolean) => void) => then(true),
  endIsolation: () => undefined,
  hasBacklog: () => false,
  canPage: () => false,
  page: () => undefined,
});

/** One stage's view of its pipeline's journal (DurableLog: group commit, recovery paging). */
export class JournalStore implements StageStore {
  readonly journaled = true;

  constructor(
    private readonly log: DurableLog,
    private readonly stage: string,
  ) {}

  encodeOutput(env: Envelope, output: unknown, what: string): void {
    env.bytes = this.log.encode(output, what);
  }

  recordFailure(id: string, env: Envelope): void {
    this.log.push({ op: 'fail', id, attempts: env.attempts, errors: this.log.encodeErrors(env.errors) });
  }

  recordMove(id: string, env: Envelope, to: string): void {
    this.log.push({ op: 'move', id, stage: to, payload: env.bytes! });
    env.bytes = undefined;
  }

  recordStart(ids: readonly string[], isolated: boolean, then: (ok: boolean) => void): void {
    this.log.record({ op: 'start', stage: this.stage, ids, isolated }, then);
  }

  endIsolation(): void {
    this.log.push({ op: 'start', stage: this.stage, ids: [], isolated: false });
  }

  hasBacklog(): boolean {
    return this.log.hasBacklog(this.stage);
  }

  canPage(): boolean {
    return this.log.canPage(this.stage);
  }

  page(room: number, keyOrdered: boolean, take: (tasks: PagedTask[]) => void): void {
    this.log.page(this.stage, room, keyOrdered, take);
  }
}
