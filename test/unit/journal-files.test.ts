import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, SCHEMA_VERSION, sqliteJournal } from '../../system/index.js';

// The journal file itself: who may open it, what opening it changes, and how runs in progress are stored.

const dir = mkdtempSync(join(tmpdir(), 'baton-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `f${n++}.db`);

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

/** The file's bytes, its mtime and the directory's listing: what "changes nothing" is checked against. */
function snapshot(path: string) {
  const st = statSync(path);
  return { bytes: readFileSync(path).toString('base64'), mtimeMs: st.mtimeMs, listing: readdirSync(join(path, '..')).sort() };
}

/** Open descriptors of this process that point at `path` (Linux). */
function openHandles(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

describe('one writer per journal file', () => {
  it('refuses a second opener in this process with ERR_JOURNAL_LOCKED naming the file, however the path is spelled', () => {
    const path = freshPath();
    const first = sqliteJournal(path);
    const again = thrown(() => sqliteJournal(path));
    expect(isBatonError(again, 'ERR_JOURNAL_LOCKED')).toBe(true);
    expect(again.message).toContain(path);
    expect(again.message).toMatch(/one writer per journal file/);
    const link = join(dir, `link${n++}.db`);
    symlinkSync(path, link);
    expect(isBatonError(thrown(() => sqliteJournal(link)), 'ERR_JOURNAL_LOCKED')).toBe(true);
    expect(isBatonError(thrown(() => sqliteJournal(relative(process.cwd(), path))), 'ERR_JOURNAL_LOCKED')).toBe(true);
    first.close();
    first.close(); // closing twice is harmless
    sqliteJournal(path).close();
  });

  it('lets a second system open the file once the first has shut down, and not before', async () => {
    const path = freshPath();
    const s1 = createSystem({ logger: false, journal: sqliteJournal(path) });
    const p1 = s1.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's', handle: (x: number) => x })] });
    for (let i = 0; i < 5; i++) await p1.send(i);
    expect(isBatonError(thrown(() => sqliteJournal(path)), 'ERR_JOURNAL_LOCKED')).toBe(true);
    await p1.drain();
    await s1.shutdown();

    const s2 = createSystem({ logger: false, journal: sqliteJournal(path) });
    const p2 = s2.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's', handle: (x: number) => x })] });
    expect(await p2.send(5)).toBe('accepted');
    await p2.drain();
    expect(s2.journal!.openPipeline('p').counts()).toEqual({ pending: 0, completed: 6, dead: 0 });
    await s2.shutdown();
  });
});

describe('the record of runs in progress', () => {
  it("keeps a running task's id whole when it holds a newline or is '!'", () => {
    const path = freshPath();
    const j1 = sqliteJournal(path);
    j1.openPipeline('p').commit([
      { op: 'start', stage: 'a', ids: ['!', 'line one\nline two', 'c'] },
      { op: 'start', stage: 'b', ids: ['!x\n'], isolated: true },
      { op: 'start', stage: 'empty', ids: [] },
    ]);
    j1.close();
    const j2 = sqliteJournal(path);
    expect(j2.openPipeline('p').runningAtCrash()).toEqual(
      new Map([
        ['a', { ids: new Set(['!', 'line one\nline two', 'c']), isolated: false }],
        ['b', { ids: new Set(['!x\n']), isolated: true }],
        ['empty', { ids: new Set(), isolated: false }],
      ]),
    );
    j2.close();
  });

  it('migrates a version-1 journal on open: its runs in progress read as version 1 wrote them, and it becomes the current version', () => {
    const path = freshPath();
    const v1 = new Database(path);
    v1.pragma('journal_mode = WAL');
    v1.exec(`
      CREATE TABLE baton_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE baton_tasks (
        pipeline TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT, stage TEXT NOT NULL,
        status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        payload BLOB, errors BLOB, code TEXT, finished_at INTEGER,
        PRIMARY KEY (pipeline, id)
      ) WITHOUT ROWID;
      CREATE TABLE baton_running (pipeline TEXT NOT NULL, stage TEXT NOT NULL, ids TEXT NOT NULL, PRIMARY KEY (pipeline, stage)) WITHOUT ROWID;
      INSERT INTO baton_meta VALUES ('app', 'baton'), ('schema_version', '1');
      INSERT INTO baton_running VALUES ('p', 'a', 'x' || char(10) || 'y'), ('p', 'b', '!' || char(10) || 'z'), ('p', 'c', '');
    `);
    v1.close();
    const journal = sqliteJournal(path);
    expect(journal.openPipeline('p').runningAtCrash()).toEqual(
      new Map([
        ['a', { ids: new Set(['x', 'y']), isolated: false }],
        ['b', { ids: new Set(['z']), isolated: true }],
        ['c', { ids: new Set(), isolated: false }],
      ]),
    );
    journal.close();
    const check = new Database(path, { readonly: true });
    expect(check.prepare("SELECT value FROM baton_meta WHERE key = 'schema_version'").pluck().get()).toBe(String(SCHEMA_VERSION));
    check.close();
    expect(SCHEMA_VERSION).toBe(2);
  });
});

describe('opening a file that is not a journal', () => {
  it('refuses a foreign SQLite file without changing its bytes, its mtime or its directory', () => {
    const foreign = freshPath();
    const db = new Database(foreign);
    db.exec('CREATE TABLE invoices (id INTEGER)');
    db.close();
    const before = snapshot(foreign);
    expect(isBatonError(thrown(() => sqliteJournal(foreign)), 'ERR_JOURNAL_FOREIGN')).toBe(true);
    expect(snapshot(foreign)).toEqual(before);
    expect(openHandles(foreign), 'the failed open closed its handle').toBe(0);
  });

  it('refuses a 0-byte file, which Baton never leaves behind, instead of turning it into a journal', () => {
    const empty = freshPath();
    writeFileSync(empty, '');
    const before = snapshot(empty);
    const err = thrown(() => sqliteJournal(empty));
    expect(isBatonError(err, 'ERR_JOURNAL_FOREIGN')).toBe(true);
    expect(err.message).toMatch(/empty/);
    expect(snapshot(empty)).toEqual(before);
  });

  it('closes the handle of an open refused for the schema version', () => {
    const newer = freshPath();
    sqliteJournal(newer).close();
    const db = new Database(newer);
    db.prepare("UPDATE baton_meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    expect(isBatonError(thrown(() => sqliteJournal(newer)), 'ERR_JOURNAL_VERSION')).toBe(true);
    expect(openHandles(newer)).toBe(0);
  });

  it('refuses a damaged journal with ERR_JOURNAL_CORRUPT naming the file', () => {
    const path = freshPath();
    sqliteJournal(path).close();
    const bytes = readFileSync(path);
    bytes.fill(0xa5, 100, 4096); // page 1 after the header: the schema table
    writeFileSync(path, bytes);
    const err = thrown(() => sqliteJournal(path));
    expect(isBatonError(err, 'ERR_JOURNAL_CORRUPT')).toBe(true);
    expect(err.message).toContain(path);
  });
});

describe('a journal opened read-only', () => {
  it('reads a closed journal without changing its bytes, its mtime or its directory, and refuses writes', async () => {
    const path = freshPath();
    const system = createSystem({ logger: false, journal: sqliteJournal(path) });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's', handle: (x: number) => x })] });
    for (let i = 0; i < 3; i++) await pipe.send(i);
    await pipe.drain();
    await system.shutdown();
    const before = snapshot(path);
    const reader = sqliteJournal(path, { readonly: true });
    expect(reader.pipelines()).toEqual(['p']);
    expect(reader.openPipeline('p').counts()).toEqual({ pending: 0, completed: 3, dead: 0 });
    expect(() => reader.openPipeline('p').commit([{ op: 'replay', id: 'p-1' }])).toThrow();
    reader.close();
    expect(snapshot(path)).toEqual(before);
  });

  it('reads a journal while a system writes to it', async () => {
    const path = freshPath();
    const system = createSystem({ logger: false, journal: sqliteJournal(path) });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's', handle: (x: number) => x })] });
    for (let i = 0; i < 3; i++) await pipe.send(i);
    await pipe.drain();
    const reader = sqliteJournal(path, { readonly: true });
    expect(reader.openPipeline('p').counts()).toEqual({ pending: 0, completed: 3, dead: 0 });
    reader.close();
    await system.shutdown();
  });
});
