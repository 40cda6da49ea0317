import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/baton.js';
import { agent, createSystem, sqliteJournal } from '../../system/index.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(args, (s) => (out += s), (s) => (err += s));
  return { code, out, err };
}

describe('the baton CLI', () => {
  it('shows status, lists dead letters as a table and replays them for the next start', async () => {
    const db = join(dir, 'ops.db');
    const system = createSystem({ logger: false, journal: sqliteJournal(db) });
    const pipe = system.spawnPipeline<number, number>({
      name: 'legal',
      stages: [agent({ name: 'parse', handle: (x: number) => { if (x < 0) throw new Error(`corrupt document ${x}`); return x; }, retry: { maxAttempts: 1 } })],
    });
    for (const x of [1, -2, 3, -4]) await pipe.send(x, { id: `doc${x}` });
    await pipe.drain();
    await system.shutdown();

    const status = cli('status', '--db', db);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/legal\s+0\s+2\s+2/);

    const dead = cli('dead-letters', '--db', db, '--pipeline', 'legal');
    expect(dead.out.split('\n')[0]).toMatch(/^id\s+stage\s+attempts\s+code\s+last error\s+finished$/);
    expect(dead.out).toContain('doc-2');
    expect(dead.out).toContain('corrupt document -4');

    const json = JSON.parse(cli('dead-letters', '--db', db, '--json').out) as { id: string; code: string }[];
    expect(json.map((d) => [d.id, d.code])).toEqual([['doc-2', 'ERR_TASK_FAILED'], ['doc-4', 'ERR_TASK_FAILED']]);

    expect(cli('replay', '--db', db, '--pipeline', 'legal', 'doc-2', 'doc1').out).toMatch(/replayed 1 of 2/);
    expect(cli('status', '--db', db).out).toMatch(/legal\s+1\s+2\s+1\s+parse:1/);
  });

  it('answers bad usage with exit code 2 and a clear message', () => {
    expect(cli().code).toBe(2);
    expect(cli('status').err).toMatch(/--db PATH is required/);
    expect(cli('launch', '--db', join(dir, 'x.db')).err).toMatch(/unknown command 'launch'/);
    expect(cli('replay', '--db', join(dir, 'y.db'), '--pipeline', 'p').err).toMatch(/name the dead letters/);
  });

  it('reports a file that is not a journal with its error code and exit code 1', () => {
    const notJournal = join(dir, 'notes.txt');
    writeFileSync(notJournal, 'not a database, just some words '.repeat(40));
    const r = cli('status', '--db', notJournal);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ERR_JOURNAL_FOREIGN/);
  });

  it('does not create a journal at a path that has none (a typo would read as an empty journal)', () => {
    const typo = join(dir, 'opps.db');
    const r = cli('status', '--db', typo);
    expect([r.code, r.err]).toEqual([1, `baton status: no journal at '${typo}'; give the path passed to sqliteJournal().\n`]);
    expect(existsSync(typo)).toBe(false);
  });

  it('refuses a --limit or --offset that is not a whole number, and replays each id once', async () => {
    const db = join(dir, 'flags.db');
    const system = createSystem({ logger: false, journal: sqliteJournal(db) });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's', handle: () => { throw new Error('no'); }, retry: { maxAttempts: 1 } })] });
    await pipe.send(1, { id: 'a' });
    await pipe.drain();
    await system.shutdown();
    expect(cli('dead-letters', '--db', db, '--limit', 'abc')).toMatchObject({ code: 2, err: expect.stringContaining("--limit must be a whole number >= 0; got 'abc'") });
    expect(cli('dead-letters', '--db', db, '--offset', '1.5')).toMatchObject({ code: 2, err: expect.stringContaining("--offset must be a whole number >= 0; got '1.5'") });
    expect(cli('replay', '--db', db, 'a', 'a').out).toMatch(/replayed 1 of 1/);
  });
});
