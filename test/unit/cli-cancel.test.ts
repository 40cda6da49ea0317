import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { main } from '../../cli/baton.js';
import { agent, createSystem, sqliteJournal } from '../../system/index.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-cli-cancel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(args, (s) => (out += s), (s) => (err += s));
  return { code, out, err };
}

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
