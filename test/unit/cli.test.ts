import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
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
  if (typeof code !== 'number') throw new Error(`baton ${args[0]} answered a promise; use cliAsync`);
  return { code, out, err };
}

/** For `top`, which answers a promise; `stopped` ends a live top. */
async function cliAsync(args: string[], stopped?: Promise<void>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, (s) => (out += s), (s) => (err += s), stopped === undefined ? {} : { stopped });
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
    expect(cli('dead-letters', '--db', db, '--limit', 'abc')).toMatchObject({ code: 2, err: expect.stringContaining("--limit must be a whole number from 1 to 9007199254740991, in digits; got 'abc'") });
    expect(cli('dead-letters', '--db', db, '--offset', '1.5')).toMatchObject({ code: 2, err: expect.stringContaining("--offset must be a whole number from 0 to 9007199254740991, in digits; got '1.5'") });
    expect(cli('replay', '--db', db, 'a', 'a').out).toMatch(/replayed 1 of 1/);
  });
});

/** The file's bytes, its mtime and its directory's listing. */
function snapshot(path: string) {
  return { bytes: readFileSync(path).toString('base64'), mtimeMs: statSync(path).mtimeMs, listing: readdirSync(join(path, '..')).sort() };
}

let m = 0;
/** A closed journal in its own directory: pipeline 'legal' with three dead letters, and 'other' with one completed task. */
async function journalWithDeadLetters(): Promise<string> {
  const db = join(mkdtempSync(join(dir, 'dl-')), `j${m++}.db`);
  const system = createSystem({ logger: false, journal: sqliteJournal(db) });
  const legal = system.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'parse', handle: (x: number) => { throw new Error(`corrupt ${x}`); }, retry: { maxAttempts: 1 } })] });
  for (const x of [1, 2, 3]) await legal.send(x, { id: `d${x}` });
  await legal.drain();
  const other = system.spawnPipeline<number, number>({ name: 'other', stages: [agent({ name: 's', handle: (x: number) => x })] });
  await other.send(1);
  await other.drain();
  await system.shutdown();
  return db;
}

describe('the baton CLI, for scripts and operators', () => {
  it('prints its version from package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(cli('--version')).toEqual({ code: 0, out: `baton ${pkg.version}\n`, err: '' });
  });

  it('lists pending stages in pipeline order, in text and in JSON with camelCase keys', async () => {
    const db = join(dir, 'order.db');
    const hang = () => new Promise<number>(() => undefined);
    const system = createSystem({ logger: false, journal: sqliteJournal(db) });
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      // Task 2 holds zeta (one at a time), so task 3 waits behind it; task 1 went on to alpha.
      stages: [agent({ name: 'zeta', handle: (x: number) => (x === 2 ? hang() : x) }), agent({ name: 'alpha', handle: hang })],
    });
    for (const x of [1, 2, 3]) await pipe.send(x);
    await new Promise((r) => setTimeout(r, 50));
    await system.shutdown({ drainMs: 0 });

    expect(cli('status', '--db', db).out).toMatch(/p\s+3\s+0\s+0\s+zeta:2 alpha:1/);
    const json = cli('status', '--db', db, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual([{ pipeline: 'p', pending: 3, completed: 0, dead: 0, pendingByStage: [{ stage: 'zeta', count: 2 }, { stage: 'alpha', count: 1 }] }]);
  });

  it('gives dead letters in JSON with camelCase keys and ISO times', async () => {
    const db = await journalWithDeadLetters();
    const [first] = JSON.parse(cli('dead-letters', '--db', db, '--pipeline', 'legal', '--json').out) as Record<string, unknown>[];
    expect(Object.keys(first!).filter((k) => !/^[a-z][A-Za-z]*$/.test(k))).toEqual([]);
    expect(first).toMatchObject({ id: 'd1', stage: 'parse', attempts: 1, code: 'ERR_TASK_FAILED', lastError: 'corrupt 1' });
    expect(first!['finishedAt']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect((first!['errors'] as { at: unknown }[])[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('says so when dead-letters stops at its limit, and where to go on', async () => {
    const db = await journalWithDeadLetters();
    const page = cli('dead-letters', '--db', db, '--pipeline', 'legal', '--limit', '2');
    expect(page.code).toBe(0);
    expect(page.out).toContain('d2');
    expect(page.out).not.toContain('d3');
    expect(page.err).toMatch(/showing 2 dead letters from offset 0; there are more: --offset 2/);
    const json = cli('dead-letters', '--db', db, '--pipeline', 'legal', '--limit', '2', '--json');
    expect((JSON.parse(json.out) as unknown[]).length).toBe(2);
    expect(json.err).toMatch(/there are more/);
    expect(cli('dead-letters', '--db', db, '--pipeline', 'legal', '--limit', '3').err).toBe('');
  });

  it('exits non-zero for a pipeline the journal does not hold, naming those it does', async () => {
    const db = await journalWithDeadLetters();
    for (const command of ['dead-letters', 'replay']) {
      const r = cli(command, '--db', db, '--pipeline', 'legl', '--all');
      expect(r.code).toBe(1);
      expect(r.err).toContain("no pipeline 'legl'");
      expect(r.err).toContain('legal, other');
    }
  });

  it('refuses numeric options that are not plain whole numbers, with the option and the value', async () => {
    const db = await journalWithDeadLetters();
    for (const bad of ['1e20', '', '0x10', '-1', '1.0', ' 3', '99999999999999999999']) {
      const r = cli('dead-letters', '--db', db, '--pipeline', 'legal', `--limit=${bad}`);
      expect([r.code, r.out], bad).toEqual([2, '']);
      expect(r.err).toContain(`--limit must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, in digits; got '${bad}'`);
    }
    expect(cli('dead-letters', '--db', db, '--pipeline', 'legal', '--limit=0').code).toBe(2);
    expect(cli('dead-letters', '--db', db, '--pipeline', 'legal', '--offset=-1').err).toContain("--offset must be a whole number from 0");
    expect(cli('dead-letters', '--db', db, '--pipeline', 'legal', '--limit', '-1').code).toBe(2);
  });

  it('reports replay in JSON', async () => {
    const db = await journalWithDeadLetters();
    const r = cli('replay', '--db', db, '--pipeline', 'legal', 'd1', 'nope', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ pipeline: 'legal', replayed: ['d1'], notDeadLetters: ['nope'] });
  });

  it('changes no file with status and dead-letters, and reads while a system runs on the journal', async () => {
    const db = await journalWithDeadLetters();
    const before = snapshot(db);
    expect(cli('status', '--db', db).code).toBe(0);
    expect(cli('status', '--db', db, '--json').code).toBe(0);
    expect(cli('dead-letters', '--db', db, '--pipeline', 'legal').code).toBe(0);
    expect(snapshot(db)).toEqual(before);

    const system = createSystem({ logger: false, journal: sqliteJournal(db) });
    expect(cli('status', '--db', db).out).toMatch(/legal\s+0\s+0\s+3/);
    const replay = cli('replay', '--db', db, '--pipeline', 'legal', '--all');
    expect(replay.code).toBe(1);
    expect(replay.err).toMatch(/ERR_JOURNAL_LOCKED/);
    await system.shutdown();
  });

  it('reports a damaged or truncated journal as ERR_JOURNAL_CORRUPT naming the file, not a raw SQLite error', async () => {
    const db = join(dir, 'cut.db');
    const system = createSystem({ logger: false, journal: sqliteJournal(db) });
    const pipe = system.spawnPipeline<string, string>({ name: 'p', stages: [agent({ name: 's', handle: (x: string) => x })] });
    await pipe.sendMany(Array.from({ length: 2000 }, (_, i) => `document ${i} `.repeat(20)));
    await pipe.drain();
    await system.shutdown();
    const whole = readFileSync(db);
    const damaged = Buffer.from(whole);
    damaged.fill(0xa5, 4096 * 3, damaged.length - 4096); // page 1 (the schema) intact: found when counting
    const cases: [string, () => void][] = [
      ['damaged', () => writeFileSync(db, damaged)],
      ['truncated', () => (writeFileSync(db, whole), truncateSync(db, Math.floor(whole.length / 2)))],
    ];
    for (const [how, spoil] of cases) {
      spoil();
      for (const command of ['status', 'dead-letters']) {
        const r = cli(command, '--db', db, '--pipeline', 'p');
        expect(r.code, `${how} ${command}`).toBe(1);
        expect(r.err).toMatch(/^ERR_JOURNAL_CORRUPT: /);
        expect(r.err).toContain(db);
        expect(r.err).not.toMatch(/SQLITE_CORRUPT|SqliteError/);
      }
    }
  });
});

it('baton cancel ends pending tasks as ERR_CANCELLED dead letters that the next start does not run', async () => {
  const db = join(dir, 'c.db');
  const first = createSystem({ logger: false, journal: sqliteJournal(db) });
  const blocked = first.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'parse', handle: () => new Promise<number>(() => undefined) })] });
  for (const x of [1, 2, 3]) await blocked.send(x, { id: `doc${x}` });
  await first.shutdown({ drainMs: 0 });

  expect(cli('cancel', '--db', db, '--pipeline', 'legal').err).toMatch(/name the pending tasks to cancel/);
  const r = cli('cancel', '--db', db, '--pipeline', 'legal', 'doc2', 'nope', '--reason', 'customer withdrew', '--json');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out)).toEqual({ pipeline: 'legal', cancelled: ['doc2'], notPending: ['nope'] });
  expect(cli('cancel', '--db', db, '--pipeline', 'legal', 'doc2').out).toMatch(/cancelled 0 of 1/);
  const dead = JSON.parse(cli('dead-letters', '--db', db, '--json').out) as { id: string; code: string; lastError: string }[];
  expect(dead).toMatchObject([{ id: 'doc2', code: 'ERR_CANCELLED', lastError: 'task doc2 was cancelled: customer withdrew' }]);

  const ran: number[] = [];
  const second = createSystem({ logger: false, journal: sqliteJournal(db) });
  const pipe = second.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'parse', handle: (x: number) => (ran.push(x), x) })] });
  await pipe.drain();
  expect(ran.sort()).toEqual([1, 3]);
  await second.shutdown();
});

describe('baton top', () => {
  it('top --url shows a running system\'s tree with live counts, once as text or JSON, or frame after frame until stopped', async () => {
    const system = createSystem({ logger: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pipe = system.spawnPipeline<number, number>({
      name: 'legal',
      stages: [
        agent({ name: 'parse', handle: (x: number) => x }),
        agent({ name: 'extract', handle: async (x: number) => (await gate, x), concurrency: 2 }),
      ],
    });
    const page = await system.observe({ port: 0 });
    try {
      for (let i = 0; i < 5; i++) await pipe.send(i, { id: `d${i}` });
      await new Promise((r) => setTimeout(r, 20));
      const once = await cliAsync(['top', '--url', page.url, '--once']);
      expect(once.code).toBe(0);
      expect(once.out).toMatch(/pipeline legal\s+running\s+accepted 5\s+pending 5/);
      expect(once.out).toMatch(/^extract\s+running\s+3\/1000\s+3\s+2\s+0/m); // 3 in its inbox, 2 running
      const json = JSON.parse((await cliAsync(['top', '--url', page.url, '--once', '--json'])).out) as { pipelines: { name: string; pending: number }[] };
      expect(json.pipelines.map((p) => [p.name, p.pending])).toEqual([['legal', 5]]);
      // baton status --url --json carries the same snapshot.
      const status = JSON.parse((await cliAsync(['status', '--url', page.url, '--json'])).out) as typeof json;
      expect(status.pipelines.map((p) => [p.name, p.pending])).toEqual([['legal', 5]]);
      release();
      await pipe.drain();
      // Live: two frames or more, then the operator stops it.
      let stop!: () => void;
      const live = cliAsync(['top', '--url', page.url, '--interval', '100'], new Promise<void>((r) => (stop = r)));
      await new Promise((r) => setTimeout(r, 350));
      stop();
      const frames = await live;
      expect(frames.code).toBe(0);
      expect(frames.out.match(/pipeline legal/g)!.length).toBeGreaterThanOrEqual(2);
      expect(frames.out).toMatch(/completed 5/);
    } finally {
      await page.close();
      await system.shutdown();
    }
  });

  it('top --db shows what the journal holds, and top refuses a bad source with a clear message', async () => {
    const db = join(dir, 'top.db');
    const system = createSystem({ logger: false, journal: sqliteJournal(db) });
    const pipe = system.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'parse', handle: (x: number) => x })] });
    await pipe.send(1, { id: 'a' });
    await pipe.drain();
    await system.shutdown();
    const once = await cliAsync(['top', '--db', db, '--once']);
    expect(once.code).toBe(0);
    expect(once.out).toMatch(/pipeline legal\s+pending 0\s+completed 1\s+dead-lettered 0/);
    expect((await cliAsync(['top', '--once'])).code).toBe(2);
    expect((await cliAsync(['top', '--db', db, '--url', 'http://127.0.0.1:1', '--once'])).code).toBe(2);
    expect((await cliAsync(['top', '--url', 'not a url', '--once'])).err).toMatch(/--url must be an http URL/);
    expect((await cliAsync(['top', '--db', db, '--interval', '5'])).err).toMatch(/--interval must be a whole number from 100/);
    const down = await cliAsync(['top', '--url', 'http://127.0.0.1:9', '--once']);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/cannot read http:\/\/127\.0\.0\.1:9\/snapshot/);
  });
});
