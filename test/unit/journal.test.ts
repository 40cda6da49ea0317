import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, SCHEMA_VERSION, sqliteJournal, type Journal } from '../../system/index.js';
import { collect } from '../support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `j${n++}.db`);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isBatonError(err) ? err.code : `not a BatonError: ${String(err)}`;
  }
  return undefined;
}

const double = agent({ name: 'double', handle: (x: number) => x * 2 });
const poison = agent({ name: 'check', handle: (x: number) => { if (x === 13) throw new Error('unlucky'); return x; }, retry: { maxAttempts: 2, backoff: { minMs: 0, maxMs: 0 } } });

describe.each([
  ['sqlite', () => sqliteJournal(freshPath())],
  ['memory', () => memoryJournal()],
] as [string, () => Journal][])('a %s journal', (_kind, make) => {
  it('acknowledges a re-sent id as a duplicate, pending or finished, without a second task', async () => {
    const system = createSystem({ logger: false, journal: make() });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [double] });
    const outcomes = collect(pipe);
    expect(await pipe.send(1, { id: 'a' })).toBe('accepted');
    expect(await pipe.send(1, { id: 'a' })).toBe('duplicate');
    await pipe.drain();
    expect(await pipe.send(1, { id: 'a' })).toBe('duplicate');
    await pipe.drain();
    expect(outcomes.map((o) => [o.id, o.output])).toEqual([['a', 2]]);
    expect(pipe.outcome('a')).toMatchObject({ status: 'completed', output: 2, stage: 'double', attempts: 1 });
    await system.shutdown();
  });

  it('keeps dead letters with their error history and replays them to the stage that failed', async () => {
    const journal = make();
    let fixed = false;
    const check = agent({ name: 'check', handle: (x: number) => { if (x === 13 && !fixed) throw new Error('unlucky'); return x; }, retry: { maxAttempts: 2, backoff: { minMs: 0, maxMs: 0 } } });
    const system = createSystem({ logger: false, journal });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [double, check] });
    for (const x of [6.5, 7]) await pipe.send(x, { id: `x${x}` });
    await pipe.drain();
    const dead = pipe.deadLetters();
    expect(dead.map((d) => d.id)).toEqual(['x6.5']);
    expect(dead[0]!.errors.map((e) => [e.stage, e.attempt, e.error.message])).toEqual([['check', 1, 'unlucky'], ['check', 2, 'unlucky']]);
    expect(dead[0]!.error).toMatchObject({ code: 'ERR_TASK_FAILED', message: 'unlucky' });
    fixed = true;
    const outcomes = collect(pipe);
    expect(pipe.replay(['x6.5', 'x7', 'nope'])).toBe(1);
    await pipe.drain();
    expect(outcomes).toMatchObject([{ id: 'x6.5', status: 'completed', output: 13, stage: 'check' }]);
    expect(pipe.deadLetters()).toEqual([]);
    await system.shutdown();
  });

  it('refuses an input it could not store faithfully, naming the path, before counting it', async () => {
    const system = createSystem({ logger: false, journal: make() });
    const pipe = system.spawnPipeline<unknown, unknown>({ name: 'p', stages: [agent({ name: 'id', handle: (x: unknown) => x })] });
    for (const [input, path] of [[{ f: () => 1 }, '$.f'], [{ m: new Map() }, '$.m'], [JSON.parse('{"a":{"__proto__":1}}'), '$.a'], [[Symbol('s')], '$[0]']] as const) {
      await expect(pipe.send(input)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', message: expect.stringContaining(path) });
    }
    expect(pipe.stats().accepted).toBe(0);
    await system.shutdown();
  });

  it('dead-letters a task whose output cannot be stored, as a failure of the stage that made it', async () => {
    const system = createSystem({ logger: false, journal: make() });
    const pipe = system.spawnPipeline<number, unknown>({ name: 'p', stages: [agent({ name: 'bad', handle: () => ({ cb: () => 1 }), retry: { maxAttempts: 1 } })] });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await pipe.drain();
    expect(outcomes[0]).toMatchObject({ status: 'dead-lettered', stage: 'bad', error: { code: 'ERR_INVALID_INPUT' } });
    await system.shutdown();
  });
});

describe('the sqlite journal', () => {
  it('resumes pending tasks at their stages, with attempts intact, when the pipeline is spawned again', async () => {
    const path = freshPath();
    const s1 = createSystem({ logger: false, journal: sqliteJournal(path) });
    let gate = false;
    const slow = agent({ name: 'slow', handle: async (x: number) => { if (!gate) await new Promise(() => undefined); return x + 1; } });
    const p1 = s1.spawnPipeline<number, number>({ name: 'p', stages: [double, slow] });
    for (let i = 0; i < 20; i++) await p1.send(i, { id: `t${i}` });
    await new Promise((r) => setTimeout(r, 50));
    await s1.shutdown({ drainMs: 0 });

    gate = true;
    const s2 = createSystem({ logger: false, journal: sqliteJournal(path) });
    const p2 = s2.spawnPipeline<number, number>({ name: 'p', stages: [double, slow] });
    const outcomes = collect(p2);
    expect(p2.stats().pending).toBe(20);
    await p2.drain();
    expect(outcomes.map((o) => o.output as number).sort((a, b) => a - b)).toEqual([...Array(20).keys()].map((i) => i * 2 + 1));
    expect(p2.stats().stages[0]!.received, 'the first stage did not run again').toBe(0);
    await s2.shutdown();
  });

  it('refuses a file written by a newer schema, an older one, a foreign database and a non-database, with clear codes', () => {
    const newer = freshPath();
    sqliteJournal(newer).close();
    new Database(newer).prepare("UPDATE baton_meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    const older = freshPath();
    sqliteJournal(older).close();
    new Database(older).prepare("UPDATE baton_meta SET value = '0' WHERE key = 'schema_version'").run();
    const foreign = freshPath();
    new Database(foreign).exec('CREATE TABLE invoices (id INTEGER)');
    const garbage = freshPath();
    writeFileSync(garbage, 'this is not a database, just some text that is long enough '.repeat(40));

    expect(code(() => sqliteJournal(newer))).toBe('ERR_JOURNAL_VERSION');
    expect(() => sqliteJournal(newer)).toThrow(/newer version of Baton/);
    expect(code(() => sqliteJournal(older))).toBe('ERR_JOURNAL_VERSION');
    expect(code(() => sqliteJournal(foreign))).toBe('ERR_JOURNAL_FOREIGN');
    expect(() => sqliteJournal(foreign)).toThrow(/invoices/);
    expect(code(() => sqliteJournal(garbage))).toBe('ERR_JOURNAL_FOREIGN');
    expect(code(() => sqliteJournal(''))).toBe('ERR_INVALID_OPTION');
    expect(code(() => sqliteJournal(freshPath(), { synchronous: 'sometimes' as 'full' }))).toBe('ERR_INVALID_OPTION');
  });

  it('prunes completed tasks past keepCompletedMs and keeps dead letters', async () => {
    let wall = 1_000_000;
    const journal = sqliteJournal(freshPath(), { now: () => wall });
    const system = createSystem({ logger: false, journal });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [double, poison], keepCompletedMs: 1_000 });
    for (const x of [1, 6.5, 2]) await pipe.send(x, { id: `k${x}` });
    await pipe.drain();
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 2, dead: 1 });
    wall += 120_000; // past the retention, and past the once-a-minute pruning check
    await pipe.send(3, { id: 'k3' });
    await pipe.drain();
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 1, dead: 1 });
    expect(pipe.outcome('k1')).toBeUndefined();
    expect(pipe.outcome('k6.5')).toMatchObject({ status: 'dead-lettered' });
    await system.shutdown();
  });

  it('reads the journal only through a journal: deadLetters() without one is a clear error', () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline({ name: 'p', stages: [double] });
    expect(code(() => pipe.deadLetters())).toBe('ERR_INVALID_OPTION');
    expect(() => pipe.replay(['x'])).toThrow(/sqliteJournal/);
  });
});
