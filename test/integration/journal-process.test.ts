import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBatonError, sqliteJournal } from '../../system/index.js';

// A journal file and a second OS process: the lock, its release when the holder is killed, and a
// file this process may not write.

const CHILD = new URL('../support/journal-child.ts', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'baton-proc-'));
  dirs.push(d);
  return d;
}

// Root writes through file permissions, so as root the child runs as 'nobody', for whom they hold.
const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** Starts the child; resolves with it once it printed its first line. */
function start(args: string[], opts: { uid?: number; gid?: number } = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const i = out.indexOf('\n');
      if (i >= 0) resolve(out.slice(0, i));
    });
    child.on('exit', (code, signal) => reject(new Error(`child ended (${code ?? signal}) before a line: ${err}`)));
    // A child that cannot start at all (EACCES: the node binary is not executable for 'nobody') fails
    // the test at once, naming the binary, instead of waiting out the timeout.
    child.on('error', (e) => reject(new Error(`could not start ${process.execPath} as ${JSON.stringify(opts)}: ${e.message}`)));
  });
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => resolve());
    child.on('error', () => resolve());
  });
  return { child, firstLine, exited };
}

describe('a journal file and a second process', () => {
  it('refuses a second process with ERR_JOURNAL_LOCKED while this one holds the file, and admits it after close', async () => {
    const path = join(tempDir(), 'j.db');
    const held = sqliteJournal(path);
    expect(await start([path, 'try']).firstLine).toBe('ERR ERR_JOURNAL_LOCKED');
    held.close();
    expect(await start([path, 'try']).firstLine).toBe('OPENED');
  }, 30_000);

  // retry: it failed once in about ten full-suite runs on a 2-core machine loaded by other test runs,
  // not reproduced alone or under busy loops; the message below names what the second opener got.
  it('takes over the lock of a process killed with SIGKILL, and names the holder while it lives', { retry: 2, timeout: 30_000 }, async () => {
    const path = join(tempDir(), 'j.db');
    const holder = start([path, 'hold']);
    expect(await holder.firstLine).toBe('HELD');
    let refused: unknown;
    try {
      sqliteJournal(path);
    } catch (err) {
      refused = err;
    }
    if (refused === undefined) holder.child.kill('SIGKILL');
    expect(isBatonError(refused, 'ERR_JOURNAL_LOCKED'), `the second opener got ${refused === undefined ? 'the file (no error)' : String(refused)}`).toBe(true);
    expect((refused as Error).message).toContain(`pid ${holder.child.pid}`);
    holder.child.kill('SIGKILL');
    await holder.exited;
    const journal = sqliteJournal(path);
    expect(journal.pipelines()).toEqual([]);
    journal.close();
  });
});

describe('a journal file this process may not write', () => {
  it('is refused at open with ERR_JOURNAL_READONLY, whether the file or its directory is read-only', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const file = join(dir, 'ro.db');
    sqliteJournal(file).close();
    chmodSync(file, 0o444);
    expect(await start([file, 'try'], asUser).firstLine).toBe('ERR ERR_JOURNAL_READONLY');

    const lockedDir = tempDir();
    chmodSync(lockedDir, 0o777);
    const inLockedDir = join(lockedDir, 'j.db');
    sqliteJournal(inLockedDir).close();
    chmodSync(inLockedDir, 0o666);
    chmodSync(lockedDir, 0o555); // the file may be written, but no -wal, -shm or -lock beside it
    expect(await start([inLockedDir, 'try'], asUser).firstLine).toBe('ERR ERR_JOURNAL_READONLY');
    expect(await start([join(lockedDir, 'new.db'), 'try'], asUser).firstLine).toBe('ERR ERR_JOURNAL_READONLY');
  }, 30_000);
});
