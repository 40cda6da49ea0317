import Database from 'better-sqlite3';
import type { ResultRow, ResultStore } from './store.js';

/**
 * The store agent's table in a real SQLite file, idempotent by document id: a document stored again
 * after a crash (at-least-once) leaves one row. Kept in its own file, next to the journal.
 */
export class SqliteStore implements ResultStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private rows: number;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, row TEXT NOT NULL)');
    this.insert = this.db.prepare('INSERT OR IGNORE INTO results (id, row) VALUES (?, ?)');
    this.rows = this.db.prepare('SELECT count(*) FROM results').pluck().get() as number;
  }

  put(id: string, row: ResultRow): void {
    this.rows += this.insert.run(id, JSON.stringify(row)).changes;
  }

  count(): number {
    return this.rows;
  }

  close(): void {
    this.db.close();
  }
}
