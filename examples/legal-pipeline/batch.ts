import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { unpack } from 'msgpackr';
import { sqliteJournal } from '../../system/index.js';
import { docIndex } from './documents.js';
import { STAGES } from './ledger.js';
import { SqliteStore, type BatchFacts } from './sqlite-store.js';

/**
 * The batch on disk: the journal (Baton's) and the result table (the store agent's), and the
 * decision a run makes at start: a fresh batch, or the rest of a batch a crashed run left behind.
 */

export const DEFAULT_DB = '.baton/legal-demo.db';
export const PIPELINE = 'legal';

/** The store agent's own SQLite file, next to the journal. */
export const storePath = (db: string): string => db.replace(/(\.db)?$/, '-store.db');

/** What the journal held for the pipeline when a resumed run started (read before Baton opens it). */
export interface JournalAtStart {
  readonly pending: number;
  readonly completed: number;
  readonly dead: number;
  /** Tasks whose run was in progress when the process died (they run again: at-least-once). */
  readonly runningAtCrash: number;
  /** Per document: 1 + the index of the stage it was pending at, or 0 if it was not pending. */
  readonly stageAt: Uint8Array;
  /** Per document: how many failed runs its error history held (the ones before this process). */
  readonly errorsAt: Uint8Array;
}

/** A journal left by a crashed run whose batch is not the one asked for: resuming it would mix two batches. */
export class BatchMismatchError extends Error {
  override readonly name = 'BatchMismatchError';
}

/**
 * Opens the batch: resumes it if the journal holds one that is not finished (tasks pending, or fewer
 * outcomes than documents), otherwise deletes the old files and starts afresh. Returns what the
 * journal held when resuming, undefined for a fresh batch.
 */
export function openBatch(db: string, facts: BatchFacts): JournalAtStart | undefined {
  const left = unfinished(db);
  if (left === undefined) {
    fresh(db);
    const store = new SqliteStore(storePath(db));
    store.setBatch(facts);
    store.close();
    return undefined;
  }
  const had = existsSync(storePath(db)) ? SqliteStore.readBatch(storePath(db)) : undefined;
  const same = had !== undefined && had.docs === facts.docs && had.seed === facts.seed && had.corruptRate === facts.corruptRate;
  if (!same) {
    const what = had === undefined ? 'an unknown batch (its result store is missing)' : `a batch of ${had.docs} documents, seed ${had.seed}, corrupt rate ${had.corruptRate}`;
    throw new BatchMismatchError(
      `${db} holds an unfinished run of ${what} (${left.pending} tasks pending). Run the same command again to resume it (same --docs, --seed, --corrupt-rate), ` +
        `or delete ${db}* and ${storePath(db)}* to start over.`,
    );
  }
  return scan(db, facts.docs);
}

function unfinished(db: string): { pending: number } | undefined {
  if (!existsSync(db)) return undefined;
  const journal = sqliteJournal(db);
  try {
    if (!journal.pipelines().includes(PIPELINE)) return undefined;
    const c = journal.openPipeline(PIPELINE).counts();
    const docs = existsSync(storePath(db)) ? SqliteStore.readBatch(storePath(db))?.docs : undefined;
    return c.pending > 0 || (docs !== undefined && c.completed + c.dead < docs) ? { pending: c.pending } : undefined;
  } finally {
    journal.close();
  }
}

/** Removes the journal, the result store and their WAL companions. */
function fresh(db: string): void {
  mkdirSync(dirname(db), { recursive: true });
  for (const base of [db, storePath(db)]) for (const f of [base, `${base}-wal`, `${base}-shm`]) rmSync(f, { force: true });
}

/** Reads where each pending task stood, and what had finished, before the pipeline recovers them. */
function scan(db: string, docs: number): JournalAtStart {
  const journal = sqliteJournal(db);
  try {
    const pj = journal.openPipeline(PIPELINE);
    const stageAt = new Uint8Array(docs);
    const errorsAt = new Uint8Array(docs);
    for (const [stage, { maxSeq }] of pj.pendingStages()) {
      const s = STAGES.indexOf(stage as (typeof STAGES)[number]);
      for (let after = 0; ; ) {
        const rows = pj.pendingAt(stage, after, maxSeq, 1000);
        if (rows.length === 0) break;
        after = rows[rows.length - 1]!.seq;
        for (const row of rows) {
          const i = docIndex(row.id);
          stageAt[i] = s + 1;
          errorsAt[i] = row.errors === undefined ? 0 : Math.min(255, (unpack(row.errors) as unknown[]).length);
        }
      }
    }
    pj.recovered(); // drops the paging index the scan built
    let runningAtCrash = 0;
    for (const { ids } of pj.runningAtCrash().values()) runningAtCrash += ids.size;
    return { ...pj.counts(), runningAtCrash, stageAt, errorsAt };
  } finally {
    journal.close();
  }
}

/** Journal bytes on disk (database plus write-ahead log). */
export function journalBytes(db: string): number {
  return [db, `${db}-wal`].reduce((n, f) => n + (existsSync(f) ? statSync(f).size : 0), 0);
}
