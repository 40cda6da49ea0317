import type { Envelope } from '../actors/envelope.js';
import type { DurableLog, PagedTask } from './durable-log.js';
import type { BudgetKeeper } from './stage-budget.js';

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
  /** Keeps the breaker's hold for the next process (see BreakerHold), or forgets it (null: closed). */
  recordBreaker(hold: BreakerHold | null): void;
  /** The hold the previous process left, or undefined (none, or not a hold Baton wrote). */
  storedBreaker(): BreakerHold | undefined;
  /** The wall clock the journal keeps its times in (ms). */
  wallNow(): number;
  /** A place in the journal for a small value under `key` (a budget's spending), or undefined without a journal. */
  keeper(key: string): BudgetKeeper | undefined;
}

/**
 * A breaker's hold as the journal keeps it, in wall-clock ms: when the outage began, when the next
 * probe is due, and how many probes failed. A process that restarts during an outage starts with
 * its breaker open (the first run a probe, at the time that was due) instead of at full speed.
 */
export interface BreakerHold {
  readonly openedAt: number;
  readonly probeAt: number;
  readonly probes: number;
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
  recordBreaker: () => undefined,
  storedBreaker: () => undefined,
  wallNow: () => Date.now(),
  keeper: () => undefined,
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

  recordBreaker(hold: BreakerHold | null): void {
    this.log.push({ op: 'state', key: `breaker:${this.stage}`, value: hold === null ? null : JSON.stringify([hold.openedAt, hold.probeAt, hold.probes]) });
  }

  storedBreaker(): BreakerHold | undefined {
    const text = this.log.journal.state(`breaker:${this.stage}`);
    if (text === undefined) return undefined;
    // A value this version did not write (or a damaged one) is ignored: the breaker starts closed, as before.
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)) return undefined;
    return { openedAt: v[0] as number, probeAt: v[1] as number, probes: Math.floor(v[2] as number) };
  }

  wallNow(): number {
    return this.log.wallNow();
  }

  keeper(key: string): BudgetKeeper {
    return journalKeeper(this.log, key);
  }

  canPage(): boolean {
    return this.log.canPage(this.stage);
  }

  page(room: number, keyOrdered: boolean, take: (tasks: PagedTask[]) => void): void {
    this.log.page(this.stage, room, keyOrdered, take);
  }
}

/** A value kept in the journal under `key` (a `state` op), read back by the next process. */
export function journalKeeper(log: DurableLog, key: string): BudgetKeeper {
  return {
    load: () => log.journal.state(key),
    save: (value) => log.push({ op: 'state', key, value }),
    wallNow: () => log.wallNow(),
  };
}
