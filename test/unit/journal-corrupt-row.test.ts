import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal, sqliteJournal } from '../../system/index.js';
import { encode } from '../../src/codec.js';
import { collect } from '../support/helpers.js';

// Issue 12, item 7: one corrupt row (a payload or error history that is not valid msgpack) made every
// start fail and nothing recovered.
const dir = mkdtempSync(join(tmpdir(), 'baton-corrupt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const GARBAGE = Uint8Array.from([0xc1, 0xff, 0x00]); // 0xc1 is never used in msgpack
const stage = agent({ name: 's1', handle: (x: { n: number }) => x.n * 2 });

describe('a journal with a corrupt row', () => {
  it('dead-letters that task with ERR_JOURNAL_CORRUPT at start and recovers the rest (memory)', async () => {
    const journal = memoryJournal();
    const pj = journal.openPipeline('p');
    pj.commit([
      { op: 'accept', id: 'a', seq: 1, key: undefined, stage: 's1', payload: encode({ n: 1 }, 'x') },
      { op: 'accept', id: 'bad', seq: 2, key: undefined, stage: 's1', payload: GARBAGE },
      { op: 'accept', id: 'c', seq: 3, key: undefined, stage: 's1', payload: encode({ n: 3 }, 'x') },
      { op: 'accept', id: 'bad-history', seq: 4, key: undefined, stage: 's1', payload: encode({ n: 4 }, 'x') },
      { op: 'fail', id: 'bad-history', attempts: 1, errors: GARBAGE },
    ]);
    const system = createSystem({ logger: false, journal });
    const pipe = system.spawnPipeline({ name: 'p', stages: [stage] });
    const outcomes = collect(pipe);
    await pipe.drain();
    const byId = Object.fromEntries(outcomes.map((o) => [o.id, o]));
    expect(byId['a']).toMatchObject({ status: 'completed', output: 2 });
    expect(byId['c']).toMatchObject({ status: 'completed', output: 6 });
    expect(byId['bad']).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_JOURNAL_CORRUPT' } });
    expect(byId['bad']!.error!.message).toMatch(/payload of task bad/);
    expect(byId['bad-history']).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_JOURNAL_CORRUPT' } });
    await system.shutdown();
  });

  it('keeps the raw bytes of a corrupt SQLite row for an operator, and lists it among the dead letters', async () => {
    const path = join(dir, 'j.db');
    const first = sqliteJournal(path);
    first.openPipeline('p').commit([
      { op: 'accept', id: 'a', seq: 1, key: undefined, stage: 's1', payload: encode({ n: 1 }, 'x') },
      { op: 'accept', id: 'bad', seq: 2, key: undefined, stage: 's1', payload: encode({ n: 2 }, 'x') },
    ]);
    first.close();
    const raw = new Database(path);
    raw.prepare("UPDATE baton_tasks SET payload = ? WHERE id = 'bad'").run(Buffer.from(GARBAGE));
    raw.close();
    const system = createSystem({ logger: false, journal: sqliteJournal(path) });
    const pipe = system.spawnPipeline({ name: 'p', stages: [stage] });
    await pipe.drain();
    expect(pipe.deadLetters().map((d) => [d.id, d.error?.code])).toEqual([['bad', 'ERR_JOURNAL_CORRUPT']]);
    expect(pipe.outcome('a')).toMatchObject({ status: 'completed', output: 2 });
    await system.shutdown();
    const check = new Database(path, { readonly: true });
    const row = check.prepare("SELECT payload FROM baton_tasks WHERE id = 'bad'").get() as { payload: Buffer };
    check.close();
    expect([...row.payload]).toEqual([...GARBAGE]);
  });
});
