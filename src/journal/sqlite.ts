import Database from 'better-sqlite3';
import { BatonError, invalidOption } from '../errors.js';
import type { Journal, JournalOp, StoredOutcome, StoredTask, SyncPipelineJournal, TaskStatus } from './journal.js';

export interface SqliteJournalOptions {
  /**
   * 'normal' (WAL, no fsync per commit): survives a process crash, may lose the last commits on power
   * loss. 'full': fsync per commit, survives power loss, slower. Optional; defaults to 'normal'.
   */
  readonly synchronous?: 'normal' | 'full';
  /** Wall clock for finishedAt and retention. Optional; defaults to Date.now. */
  readonly now?: () => number;
}

/** The schema this code writes. Bump it with a migration when the tables change. */
export const SCHEMA_VERSION = 1;

const STATUS = { pending: 0, completed: 1, dead: 2 } as const;
const STATUS_NAME: TaskStatus[] = ['pending', 'completed', 'dead'];

// No secondary index is kept up to date in normal running: a handoff changes a task's stage, and an
// index on it cost a third of the durable throughput (46k -> 30k tasks/s through 5 stages here).
// Recovery builds a partial index for paging the backlog (about 50 ms for 50,000 pending tasks) and
// drops it once every backlog is loaded; pruning scans once a minute.
const RECOVERY_INDEX = 'CREATE INDEX IF NOT EXISTS baton_recovery ON baton_tasks (pipeline, stage, seq) WHERE status = 0';

const SCHEMA = `
CREATE TABLE baton_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE baton_tasks (
  pipeline TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT, stage TEXT NOT NULL,
  status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  payload BLOB, errors BLOB, code TEXT, finished_at INTEGER,
  PRIMARY KEY (pipeline, id)
) WITHOUT ROWID;
CREATE TABLE baton_running (pipeline TEXT NOT NULL, stage TEXT NOT NULL, ids TEXT NOT NULL, PRIMARY KEY (pipeline, stage)) WITHOUT ROWID;
`;

/** The embedded durable journal: one SQLite file in WAL mode. */
export function sqliteJournal(path: string, options: SqliteJournalOptions = {}): Journal<SyncPipelineJournal> {
  if (typeof path !== 'string' || path.length === 0) throw invalidOption('sqliteJournal(path)', path, "a file path such as './baton.db' (or ':memory:')");
  const sync = options.synchronous ?? 'normal';
  if (sync !== 'normal' && sync !== 'full') throw invalidOption('sqliteJournal synchronous', sync, "'normal' or 'full'");
  let db: Database.Database;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
    checkSchema(db, path);
  } catch (err) {
    if (err instanceof BatonError) throw err;
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' cannot be opened as a Baton journal: ${(err as Error).message}. Point sqliteJournal at a new path or at a file Baton created.`, { path }, err);
  }
  const now = options.now ?? Date.now;
  const open = new Map<string, SyncPipelineJournal>();
  const recovering = new Set<string>();
  const recovery = {
    begin(name: string) {
      if (recovering.size === 0) db.exec(RECOVERY_INDEX);
      recovering.add(name);
    },
    end(name: string) {
      if (recovering.delete(name) && recovering.size === 0) db.exec('DROP INDEX IF EXISTS baton_recovery');
    },
  };
  return {
    kind: 'sqlite',
    durable: path !== ':memory:',
    now,
    openPipeline(name) {
      let pj = open.get(name);
      if (pj === undefined) open.set(name, (pj = new SqlitePipelineJournal(db, name, recovery)));
      return pj;
    },
    pipelines: () => (db.prepare('SELECT DISTINCT pipeline FROM baton_tasks ORDER BY pipeline').pluck().all() as string[]),
    close: () => db.close(),
  };
}

function checkSchema(db: Database.Database, path: string): void {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
  if (tables.length === 0) {
    // One transaction: a process killed while creating the journal leaves an empty file, never a
    // half-made schema that the next start would take for a foreign one (found by the kill test).
    db.transaction(() => {
      db.exec(SCHEMA);
      db.prepare('INSERT INTO baton_meta (key, value) VALUES (?, ?), (?, ?)').run('app', 'baton', 'schema_version', String(SCHEMA_VERSION));
    })();
    return;
  }
  if (!tables.includes('baton_meta')) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' is an SQLite file with other tables (${tables.slice(0, 3).join(', ')}) and no Baton journal; use a new path for the journal.`, { path, tables });
  }
  const meta = new Map((db.prepare('SELECT key, value FROM baton_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  const version = Number(meta.get('schema_version'));
  if (meta.get('app') !== 'baton' || !Number.isInteger(version)) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' has a baton_meta table that Baton did not write; use a new path for the journal.`, { path });
  }
  if (version !== SCHEMA_VERSION) {
    const which = version > SCHEMA_VERSION ? 'a newer' : 'an older';
    throw new BatonError(
      'ERR_JOURNAL_VERSION',
      `'${path}' holds journal schema ${version}, written by ${which} version of Baton; this version reads schema ${SCHEMA_VERSION}. ${version > SCHEMA_VERSION ? 'Upgrade Baton' : 'Open it with the Baton version that wrote it and let it drain'}, or use a new path.`,
      { path, version, expected: SCHEMA_VERSION },
    );
  }
}

interface Row {
  id: string;
  seq: number;
  key: string | null;
  stage: string;
  status: number;
  attempts: number;
  payload: Uint8Array | null;
  errors: Uint8Array | null;
  code: string | null;
  finished_at: number | null;
}

class SqlitePipelineJournal implements SyncPipelineJournal {
  private readonly s;
  private readonly apply: (ops: readonly JournalOp[]) => void;

  constructor(
    private readonly db: Database.Database,
    readonly name: string,
    private readonly recovery: { begin(name: string): void; end(name: string): void },
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      accept: p('INSERT OR IGNORE INTO baton_tasks (pipeline, id, seq, key, stage, status, payload) VALUES (?, ?, ?, ?, ?, 0, ?)'),
      start: p('INSERT OR REPLACE INTO baton_running (pipeline, stage, ids) VALUES (?, ?, ?)'),
      move: p('UPDATE baton_tasks SET stage = ?, payload = ?, attempts = 0 WHERE pipeline = ? AND id = ? AND status = 0'),
      fail: p('UPDATE baton_tasks SET attempts = ?, errors = ? WHERE pipeline = ? AND id = ? AND status = 0'),
      complete: p('UPDATE baton_tasks SET status = 1, stage = ?, attempts = ?, payload = ?, finished_at = ? WHERE pipeline = ? AND id = ? AND status = 0'),
      dead: p('UPDATE baton_tasks SET status = 2, stage = ?, attempts = ?, code = ?, errors = ?, finished_at = ? WHERE pipeline = ? AND id = ? AND status = 0'),
      replay: p('UPDATE baton_tasks SET status = 0, attempts = 0, code = NULL, finished_at = NULL WHERE pipeline = ? AND id = ? AND status = 2'),
      runningAll: p('SELECT stage, ids FROM baton_running WHERE pipeline = ?'),
      status: p('SELECT status FROM baton_tasks WHERE pipeline = ? AND id = ?').pluck(),
      task: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND id = ? AND status = 0'),
      lastSeq: p('SELECT max(seq) FROM baton_tasks WHERE pipeline = ?').pluck(),
      pendingAt: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND status = 0 AND stage = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
      stages: p('SELECT stage, count(*) AS count, max(seq) AS maxSeq FROM baton_tasks WHERE pipeline = ? AND status = 0 GROUP BY stage'),
      release: p('DELETE FROM baton_running WHERE pipeline = ?'),
      outcome: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND id = ? AND status > 0'),
      dead_list: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND status = 2 ORDER BY finished_at, seq LIMIT ? OFFSET ?'),
      prune: p('DELETE FROM baton_tasks WHERE pipeline = ? AND status = 1 AND finished_at < ?'),
      counts: p('SELECT status, count(*) AS n FROM baton_tasks WHERE pipeline = ? GROUP BY status'),
    };
    const s = this.s;
    const name_ = name;
    this.apply = db.transaction((ops: readonly JournalOp[]) => {
      for (const o of ops) {
        switch (o.op) {
          case 'accept':
            s.accept.run(name_, o.id, o.seq, o.key ?? null, o.stage, o.payload);
            break;
          case 'start':
            s.start.run(name_, o.stage, (o.isolated ? '!\n' : '') + o.ids.join('\n'));
            break;
          case 'move':
            s.move.run(o.stage, o.payload, name_, o.id);
            break;
          case 'fail':
            s.fail.run(o.attempts, o.errors, name_, o.id);
            break;
          case 'complete':
            s.complete.run(o.stage, o.attempts, o.output, o.at, name_, o.id);
            break;
          case 'dead':
            s.dead.run(o.stage, o.attempts, o.code, o.errors, o.at, name_, o.id);
            break;
          case 'replay':
            s.replay.run(name_, o.id);
            break;
        }
      }
    });
  }

  lastSeq(): number {
    return (this.s.lastSeq.get(this.name) as number | null) ?? 0;
  }

  status(id: string): TaskStatus | undefined {
    const st = this.s.status.get(this.name, id) as number | undefined;
    return st === undefined ? undefined : STATUS_NAME[st];
  }

  task(id: string): StoredTask | undefined {
    const r = this.s.task.get(this.name, id) as Row | undefined;
    return r === undefined ? undefined : toTask(r);
  }

  pendingAt(stage: string, afterSeq: number, upToSeq: number, limit: number): StoredTask[] {
    this.recovery.begin(this.name);
    return (this.s.pendingAt.all(this.name, stage, afterSeq, upToSeq, limit) as Row[]).map(toTask);
  }

  runningAtCrash(): Map<string, { ids: Set<string>; isolated: boolean }> {
    const rows = this.s.runningAll.all(this.name) as { stage: string; ids: string }[];
    return new Map(
      rows.map((r) => {
        const ids = r.ids === '' ? [] : r.ids.split('\n');
        const isolated = ids[0] === '!';
        return [r.stage, { ids: new Set(isolated ? ids.slice(1) : ids), isolated }];
      }),
    );
  }

  pendingStages(): Map<string, { count: number; maxSeq: number }> {
    const rows = this.s.stages.all(this.name) as { stage: string; count: number; maxSeq: number }[];
    return new Map(rows.map((r) => [r.stage, { count: r.count, maxSeq: r.maxSeq }]));
  }

  commit(ops: readonly JournalOp[]): void {
    if (ops.length > 0) this.apply(ops);
  }

  recovered(): void {
    this.recovery.end(this.name);
  }

  releaseRunning(): void {
    this.s.release.run(this.name);
  }

  outcome(id: string): StoredOutcome | undefined {
    const r = this.s.outcome.get(this.name, id) as Row | undefined;
    return r === undefined ? undefined : toOutcome(r);
  }

  deadLetters(limit: number, offset: number): StoredOutcome[] {
    return (this.s.dead_list.all(this.name, limit, offset) as Row[]).map(toOutcome);
  }

  pruneCompleted(before: number): number {
    return this.s.prune.run(this.name, before).changes;
  }

  counts(): { pending: number; completed: number; dead: number } {
    const out = { pending: 0, completed: 0, dead: 0 };
    for (const r of this.s.counts.all(this.name) as { status: number; n: number }[]) out[STATUS_NAME[r.status]!] = r.n;
    return out;
  }
}

function toTask(r: Row): StoredTask {
  return { id: r.id, seq: r.seq, key: r.key ?? undefined, stage: r.stage, payload: r.payload!, attempts: r.attempts, errors: r.errors ?? undefined };
}

function toOutcome(r: Row): StoredOutcome {
  return {
    id: r.id,
    key: r.key ?? undefined,
    status: r.status === STATUS.completed ? 'completed' : 'dead',
    stage: r.stage,
    attempts: r.attempts,
    output: r.status === STATUS.completed ? (r.payload ?? undefined) : undefined,
    errors: r.errors ?? undefined,
    code: r.code ?? undefined,
    finishedAt: r.finished_at ?? 0,
  };
}
