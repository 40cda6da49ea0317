import Database from 'better-sqlite3';
import type { ResultRow, ResultStore } from './store.js';

/** What identifies a batch: a run resumes a crashed one only if these are the same. */
export interface BatchFacts {
  readonly docs: number;
  readonly seed: number;
  readonly corruptRate: number;
}

/**
 * The store agent's table in a real SQLite file, idempotent by document id: a document stored again
 * after a crash (at-least-once) leaves one row. Kept in its own file, next to the journal, with a
 * row naming the batch it belongs to.
 */
export class SqliteStore implements ResultStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private rows: number;
  /** Puts the primary key ignored: documents stored again (a run in flight at a crash redone). */
  repeated = 0;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // Like the journal's default: survives a killed process (not power loss); a row lost to power loss
    // is written again, since the journal redoes the store stage of a task it has not seen finish.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, row TEXT NOT NULL) WITHOUT ROWID');
    this.db.exec('CREATE TABLE IF NOT EXISTS batch (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
    this.insert = this.db.prepare('INSERT INTO results (id, row) VALUES (?, ?) ON CONFLICT (id) DO NOTHING');
    this.rows = this.db.prepare('SELECT count(*) FROM results').pluck().get() as number;
  }

  put(id: string, row: ResultRow): void {
    const added = this.insert.run(id, JSON.stringify(row)).changes;
    this.rows += added;
    if (added === 0) this.repeated++;
  }

  count(): number {
    return this.rows;
  }

  *ids(): Iterable<string> {
    yield* this.db.prepare('SELECT id FROM results').pluck().iterate() as Iterable<string>;
  }

  setBatch(facts: BatchFacts): void {
    this.db.prepare('INSERT OR REPLACE INTO batch (key, value) VALUES (?, ?)').run('facts', JSON.stringify(facts));
  }

  /** The batch a store file belongs to, or undefined if it names none. */
  static readBatch(path: string): BatchFacts | undefined {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'batch'").get();
      const json = has === undefined ? undefined : (db.prepare("SELECT value FROM batch WHERE key = 'facts'").pluck().get() as string | undefined);
      return json === undefined ? undefined : (JSON.parse(json) as BatchFacts);
    } finally {
      db.close();
    }
  }

  close(): void {
    this.db.close();
  }
}
