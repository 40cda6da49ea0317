import Database from 'better-sqlite3';
import { closeSync, existsSync, linkSync, openSync, readFileSync, readSync, realpathSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BatonError, invalidOption } from '../errors.js';
import type { Journal, SyncPipelineJournal } from './journal.js';
import { decodeRunning, encodeRunning, SqlitePipelineJournal } from './sqlite-pipeline.js';

/** Options of `sqliteJournal(path, options)`. */
export interface SqliteJournalOptions {
  /**
   * 'normal' (WAL, no fsync per commit): survives a process crash, may lose the last commits on power
   * loss. 'full': fsync per commit, survives power loss, slower. Optional; defaults to 'normal'.
   */
  readonly synchronous?: 'normal' | 'full';
  /** Wall clock for finishedAt and retention. Optional; defaults to Date.now. */
  readonly now?: () => number;
  /**
   * Opens an existing journal for reading only, for tools (the `baton` CLI's status and dead-letters):
   * takes no lock, so it works while a system writes the file; changes no file and creates none; a
   * commit is refused. A system cannot run on it. Optional; defaults to false.
   */
  readonly readonly?: boolean;
}

/**
 * The schema this code writes. Bump it with a migration when the tables change.
 * 2: runs in progress are stored as JSON (version 1 joined ids with newlines, which an id may hold),
 *    and baton_stages records the order in which a pipeline's stages were first reached.
 */
export const SCHEMA_VERSION = 2;
/** The oldest schema this code opens: a writer migrates it, a reader reads it as it is. */
const OLDEST_READABLE = 1;

// No secondary index is kept up to date in normal running: a handoff changes a task's stage, and an
// index on it cost a third of the durable throughput (46k -> 30k tasks/s through 5 stages here).
// Recovery builds a partial index for paging the backlog (about 50 ms for 50,000 pending tasks) and
// drops it once every backlog is loaded; pruning scans once a minute.
const RECOVERY_INDEX = 'CREATE INDEX IF NOT EXISTS baton_recovery ON baton_tasks (pipeline, stage, seq) WHERE status = 0';

const STAGES_TABLE = 'CREATE TABLE baton_stages (pipeline TEXT NOT NULL, stage TEXT NOT NULL, ord INTEGER NOT NULL, PRIMARY KEY (pipeline, stage)) WITHOUT ROWID;';

const SCHEMA = `
CREATE TABLE baton_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE baton_tasks (
  pipeline TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT, stage TEXT NOT NULL,
  status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  payload BLOB, errors BLOB, code TEXT, finished_at INTEGER,
  PRIMARY KEY (pipeline, id)
) WITHOUT ROWID;
CREATE TABLE baton_running (pipeline TEXT NOT NULL, stage TEXT NOT NULL, ids TEXT NOT NULL, PRIMARY KEY (pipeline, stage)) WITHOUT ROWID;
${STAGES_TABLE}
`;

/**
 * The embedded durable journal: one SQLite file in WAL mode, with one writer.
 *
 * One writer per file: a second opener (another system in this process, or another process) is
 * refused with ERR_JOURNAL_LOCKED. Two writers would both number tasks '<pipeline>-1, -2, ...' and
 * drop each other's rows, and each would recover the other's pending tasks. The lock is SQLite's
 * own exclusive lock (fcntl) on a companion file '<journal>-lock', held from open to close:
 * - the kernel drops it when the process dies, SIGKILL included, so a stale lock cannot outlive its
 *   owner and there is no pid to check (a lock file holding a pid is wrong after pid reuse, and needs
 *   a racy take-over);
 * - SQLite tracks locks per file across the connections of one process, so a second system in the
 *   same process is refused too (plain fcntl locks do not conflict within a process);
 * - it is not the journal file itself: `locking_mode=EXCLUSIVE` on the journal would also shut out
 *   readers (the CLI's status while a system runs gets SQLITE_BUSY), and any descriptor this process
 *   opens and closes on the journal file (a backup, a size check) would silently drop fcntl locks
 *   held on it. Measured here: taking and dropping the lock costs 0.03 ms, of 1.4 ms to open and close a journal.
 * The companion file is left in place at close: deleting it would let a process that opened the old
 * one and a process that creates a new one both hold "the" lock.
 */
export function sqliteJournal(path: string, options: SqliteJournalOptions = {}): Journal<SyncPipelineJournal> {
  if (typeof path !== 'string' || path.length === 0) throw invalidOption('sqliteJournal(path)', path, "a file path such as './baton.db' (or ':memory:')");
  if (options === null || typeof options !== 'object') throw invalidOption('sqliteJournal(path, options)', options, 'an object (or nothing)');
  const sync = options.synchronous ?? 'normal';
  if (sync !== 'normal' && sync !== 'full') throw invalidOption('sqliteJournal synchronous', sync, "'normal' or 'full'");
  if (options.readonly !== undefined && typeof options.readonly !== 'boolean') throw invalidOption('sqliteJournal readonly', options.readonly, 'true or false');
  const now = options.now ?? Date.now;
  if (path === ':memory:') {
    const db = new Database(':memory:');
    db.exec(SCHEMA);
    return journalOver(db, { path, durable: false, readonly: false, version: SCHEMA_VERSION, now, lock: undefined });
  }
  return options.readonly === true ? openReader(path, now) : openWriter(path, sync, now);
}

function openWriter(path: string, sync: 'normal' | 'full', now: () => number): Journal<SyncPipelineJournal> {
  let file = resolve(path);
  if (!existsSync(file)) {
    if (!existsSync(dirname(file))) throw invalidOption('sqliteJournal(path)', path, 'a path in a directory that exists');
    try {
      createJournalFile(file);
    } catch (err) {
      throw openError(err, path);
    }
  }
  // The lock sits next to the file itself, so that every spelling of the path (relative, a symlink) meets it.
  file = realpathSync(file);
  refuseNonDatabase(file, path);
  let db: Database.Database | undefined;
  let lock: Database.Database | undefined;
  try {
    // Nothing below writes until the file has passed as a journal: a refused file keeps its bytes.
    db = new Database(file, { fileMustExist: true });
    const version = checkSchema(db, path);
    lock = takeLock(file, path, db);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
    // A real write, on purpose: SQLite opens a file it may not write (a read-only file, an immutable
    // one, a directory without room for the -wal) without complaint, and would only fail at the
    // first commit, from inside a running pipeline. The row also names the holder for ERR_JOURNAL_LOCKED.
    const owner = `pid ${process.pid} on ${hostname()}, since ${new Date(now()).toISOString()}`;
    const d = db;
    d.transaction(() => {
      if (version === 1) migrateFrom1(d);
      d.prepare("INSERT OR REPLACE INTO baton_meta (key, value) VALUES ('owner', ?)").run(owner);
    })();
    return journalOver(db, { path, durable: true, readonly: false, version: SCHEMA_VERSION, now, lock });
  } catch (err) {
    db?.close();
    lock?.close();
    throw openError(err, path);
  }
}

function openReader(path: string, now: () => number): Journal<SyncPipelineJournal> {
  const file = resolve(path);
  if (!existsSync(file)) throw invalidOption('sqliteJournal(path) with readonly', path, 'the path of an existing journal (a reader does not create one)');
  refuseNonDatabase(file, path);
  let db: Database.Database | undefined;
  try {
    if (existsSync(`${file}-wal`)) {
      // A writer is running (or died): the recent commits are in the -wal, read through its index (-shm).
      db = new Database(file, { readonly: true, fileMustExist: true });
    } else {
      // A closed journal has everything in the file. Opening it read-only would still create -wal and
      // -shm files beside it (WAL mode needs them to read), and this build of SQLite takes no URI
      // options (immutable=1), so it is read from a copy in memory, marked as a rollback-mode file
      // (header bytes 18-19), which SQLite then reads without companions. Costs the file's size in memory.
      const bytes = readFileSync(file);
      if (bytes[18] === 2) bytes[18] = 1;
      if (bytes[19] === 2) bytes[19] = 1;
      db = new Database(bytes, { readonly: true });
    }
    const version = checkSchema(db, path);
    return journalOver(db, { path, durable: true, readonly: true, version, now, lock: undefined });
  } catch (err) {
    db?.close();
    throw openError(err, path);
  }
}

/**
 * Creates a new journal whole, or not at all: it is built under a temporary name and linked into
 * place, so a process killed while creating it leaves no half-made (or empty) file at the path, and
 * a file found at the path is never taken for an interrupted start (a 0-byte file is someone else's).
 */
function createJournalFile(file: string): void {
  const tmp = `${file}.creating-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const db = new Database(tmp);
    try {
      db.pragma('journal_mode = WAL');
      db.transaction(() => {
        db.exec(SCHEMA);
        db.prepare('INSERT INTO baton_meta (key, value) VALUES (?, ?), (?, ?)').run('app', 'baton', 'schema_version', String(SCHEMA_VERSION));
      })();
    } finally {
      db.close();
    }
    try {
      linkSync(tmp, file); // fails if another process created the journal meanwhile: open that one
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      if (!existsSync(file)) renameSync(tmp, file); // a file system without hard links
    }
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** Refuses an empty file or one that is not SQLite, before SQLite opens (and could change) it. */
function refuseNonDatabase(file: string, path: string): void {
  const size = statSync(file).size;
  if (size === 0) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' is an empty file (0 bytes); Baton creates its journals whole, so this one is not Baton's. Delete it if it is yours to delete, or point sqliteJournal at a path where no file exists.`, { path });
  }
  const head = Buffer.alloc(16);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    readSync(fd, head, 0, 16, 0);
  } catch (err) {
    throw openError(err, path);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (!head.equals(SQLITE_MAGIC)) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' is not an SQLite database, so not a Baton journal; point sqliteJournal at a new path or at a file Baton created.`, { path });
  }
}

function takeLock(file: string, path: string, db: Database.Database): Database.Database {
  // timeout 0: a held lock is an answer, not something to wait for.
  const lock = new Database(`${file}-lock`, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE; COMMIT'); // in EXCLUSIVE locking mode the lock stays until close
    return lock;
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    let owner: string | undefined;
    try {
      owner = db.prepare("SELECT value FROM baton_meta WHERE key = 'owner'").pluck().get() as string | undefined;
    } catch {
      owner = undefined;
    }
    const holder = owner === undefined ? '' : ` (last opened by ${owner})`;
    throw new BatonError(
      'ERR_JOURNAL_LOCKED',
      `'${path}' is open in another Baton system, in this process or another${holder}: one writer per journal file. Shut that system down first, or give this one its own file; ` +
        'to read the journal meanwhile, use sqliteJournal(path, { readonly: true }) or `baton status` / `baton dead-letters`.',
      { path, owner },
    );
  }
}

/** Turns what SQLite or the file system threw while opening into a coded error naming the file. */
function openError(err: unknown, path: string): BatonError {
  if (err instanceof BatonError) return err;
  const code = String((err as { code?: unknown }).code ?? '');
  const why = (err as Error).message;
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new BatonError(
      'ERR_JOURNAL_READONLY',
      `'${path}' cannot be written by this process (${why}): a journal needs to write the file and to create '-wal', '-shm' and '-lock' files beside it. Give the process write access to the file and its directory, or use another path; to only read it, use sqliteJournal(path, { readonly: true }).`,
      { path, sqlite: code },
      err,
    );
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new BatonError('ERR_JOURNAL_CORRUPT', `'${path}' is damaged (${why}); restore it from a backup, or move it aside and start with a new journal.`, { path, sqlite: code }, err);
  }
  return new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' cannot be opened as a Baton journal: ${why}. Point sqliteJournal at a new path or at a file Baton created.`, { path, sqlite: code }, err);
}

/** Checks that the file holds a journal this code reads, without writing; returns its schema version. */
function checkSchema(db: Database.Database, path: string): number {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
  if (tables.length === 0) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' is an SQLite database with no tables; Baton creates its journals whole, so this one is not Baton's. Point sqliteJournal at a path where no file exists.`, { path });
  }
  if (!tables.includes('baton_meta')) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' is an SQLite file with other tables (${tables.slice(0, 3).join(', ')}) and no Baton journal; use a new path for the journal.`, { path, tables });
  }
  const meta = new Map((db.prepare('SELECT key, value FROM baton_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  const version = Number(meta.get('schema_version'));
  if (meta.get('app') !== 'baton' || !Number.isInteger(version)) {
    throw new BatonError('ERR_JOURNAL_FOREIGN', `'${path}' has a baton_meta table that Baton did not write; use a new path for the journal.`, { path });
  }
  if (version < OLDEST_READABLE || version > SCHEMA_VERSION) {
    const which = version > SCHEMA_VERSION ? 'a newer' : 'an older';
    throw new BatonError(
      'ERR_JOURNAL_VERSION',
      `'${path}' holds journal schema ${version}, written by ${which} version of Baton; this version reads schemas ${OLDEST_READABLE} to ${SCHEMA_VERSION}. ${version > SCHEMA_VERSION ? 'Upgrade Baton' : 'Open it with the Baton version that wrote it and let it drain'}, or use a new path.`,
      { path, version, expected: SCHEMA_VERSION },
    );
  }
  return version;
}

/** Version 1 to 2, inside the opening transaction: runs in progress re-encoded, the stage-order table added. */
function migrateFrom1(db: Database.Database): void {
  const rows = db.prepare('SELECT pipeline, stage, ids FROM baton_running').all() as { pipeline: string; stage: string; ids: string }[];
  const update = db.prepare('UPDATE baton_running SET ids = ? WHERE pipeline = ? AND stage = ?');
  for (const r of rows) {
    const { ids, isolated } = decodeRunning(r.ids, 1);
    update.run(encodeRunning([...ids], isolated), r.pipeline, r.stage);
  }
  db.exec(STAGES_TABLE);
  db.prepare("UPDATE baton_meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION));
}

interface Opened {
  readonly path: string;
  readonly durable: boolean;
  readonly readonly: boolean;
  readonly version: number;
  readonly now: () => number;
  readonly lock: Database.Database | undefined;
}

function journalOver(db: Database.Database, o: Opened): Journal<SyncPipelineJournal> {
  const open = new Map<string, SyncPipelineJournal>();
  const recovering = new Set<string>();
  // A reader cannot build the paging index; it pages without it (slower, and only tools read).
  const recovery = o.readonly
    ? { begin() {}, end() {} }
    : {
        begin(name: string) {
          if (recovering.size === 0) db.exec(RECOVERY_INDEX);
          recovering.add(name);
        },
        end(name: string) {
          if (recovering.delete(name) && recovering.size === 0) db.exec('DROP INDEX IF EXISTS baton_recovery');
        },
      };
  let closed = false;
  return {
    kind: 'sqlite',
    durable: o.durable,
    now: o.now,
    openPipeline(name) {
      let pj = open.get(name);
      if (pj === undefined) open.set(name, (pj = new SqlitePipelineJournal(db, name, recovery, o.version)));
      return pj;
    },
    pipelines: () => (db.prepare('SELECT DISTINCT pipeline FROM baton_tasks ORDER BY pipeline').pluck().all() as string[]),
    close: () => {
      if (closed) return;
      closed = true;
      db.close();
      o.lock?.close(); // after the journal: the next writer finds it closed
    },
  };
}

