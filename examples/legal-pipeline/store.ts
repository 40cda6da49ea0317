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
 * leaves one row. MemoryStore (--memory) and SqliteStore (the durable default) implement it.
 */
export interface ResultStore {
  put(id: string, row: ResultRow): void;
  count(): number;
  /** The stored document ids, for the audit. */
  ids(): Iterable<string>;
}

/**
 * Rows kept as JSON text, as a database would keep them: a copy, not a reference, so a stored row
 * holds no substring of the document it was read from (V8 substrings keep their parent alive).
 */
export class MemoryStore implements ResultStore {
  private readonly rows = new Map<string, string>();

  put(id: string, row: ResultRow): void {
    this.rows.set(id, JSON.stringify(row));
  }

  count(): number {
    return this.rows.size;
  }

  ids(): Iterable<string> {
    return this.rows.keys();
  }

  get(id: string): ResultRow | undefined {
    const json = this.rows.get(id);
    return json === undefined ? undefined : (JSON.parse(json) as ResultRow);
  }
}
