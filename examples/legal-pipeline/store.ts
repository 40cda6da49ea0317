import type { DocType } from './legal-text.js';

/** One stored result: the validated fields of a document. */
export interface ResultRow {
  readonly type: DocType;
  readonly parties: readonly string[];
  readonly dates: readonly string[];
  readonly amounts: readonly number[];
  readonly clauses: number;
}

/**
 * Where the store agent writes. `put` is idempotent by document id: writing the same id twice
 * leaves one row. The in-memory store is the only one today; a SQLite store will implement
 * the same two methods.
 */
export interface ResultStore {
  put(id: string, row: ResultRow): void;
  count(): number;
}

export class MemoryStore implements ResultStore {
  private readonly rows = new Map<string, ResultRow>();

  put(id: string, row: ResultRow): void {
    this.rows.set(id, row);
  }

  count(): number {
    return this.rows.size;
  }

  get(id: string): ResultRow | undefined {
    return this.rows.get(id);
  }
}
