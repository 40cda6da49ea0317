// Durable benchmarks: Baton's 5-stage pipeline on the SQLite journal against the raw limit of
// grouped SQLite writes in the same run; recovery of 50,000 pending tasks; peak RSS at 50k vs 500k
// tasks (each in a fresh child process); journal bytes per task.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agent, createSystem, sqliteJournal } from '../system/index.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));
let files = 0;
const dbPath = () => join(dir, `b${files++}.db`);
export const cleanup = () => rmSync(dir, { recursive: true, force: true });

function* inputs(n: number) {
  for (let i = 0; i < n; i++) yield { doc: i, text: 'lorem ipsum dolor sit amet' };
}

const stages = () => [1, 2, 3, 4, 5].map((i) => agent({ name: `s${i}`, handle: (x: { doc: number; text: string }) => ({ doc: x.doc, text: x.text }) }));

/** Rows/s of single-row inserts grouped 256 per transaction: the same shape as a handoff's write. */
export function rawGroupedWrites(n: number): number {
  const db = new Database(dbPath());
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (p TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER, stage TEXT, payload BLOB, PRIMARY KEY (p, id)) WITHOUT ROWID');
  const ins = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?)');
  const payload = Buffer.alloc(48, 7);
  const tx = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) ins.run('bench', `bench-${i}`, i, 's1', payload);
  });
  const t0 = performance.now();
  for (let i = 0; i < n; i += 256) tx(i, Math.min(n, i + 256));
  const rate = n / ((performance.now() - t0) / 1000);
  db.close();
  return rate;
}

/** Tasks/s through 5 durable stages (each task: 1 accept, 4 handoffs, 1 completion, 5 start records). */
export async function durablePipeline(n: number): Promise<{ tasksPerSec: number; bytesPerTask: number }> {
  const path = dbPath();
  const system = createSystem({ logger: false, journal: sqliteJournal(path) });
  const pipe = system.spawnPipeline({ name: 'bench', stages: stages(), defaults: { mailbox: { capacity: 1024 } } });
  const t0 = performance.now();
  await pipe.sendMany(inputs(n));
  await pipe.drain();
  const tasksPerSec = n / ((performance.now() - t0) / 1000);
  await system.shutdown();
  const size = statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);
  return { tasksPerSec, bytesPerTask: size / n };
}

/** Leaves `n` tasks pending at the first stage, then times a new system's recovery of them. */
export async function recovery(n: number): Promise<{ spawnMs: number; firstOutcomeMs: number; drainMs: number }> {
  const path = dbPath();
  const blocked = createSystem({ logger: false, journal: sqliteJournal(path) });
  const never = agent({ name: 's1', handle: () => new Promise(() => undefined) });
  const p1 = blocked.spawnPipeline({ name: 'bench', stages: [never, ...stages().slice(1)], defaults: { mailbox: { capacity: n } } });
  await p1.sendMany(inputs(n));
  await blocked.shutdown({ drainMs: 0 });

  const t0 = performance.now();
  const system = createSystem({ logger: false, journal: sqliteJournal(path) });
  const pipe = system.spawnPipeline({ name: 'bench', stages: stages(), defaults: { mailbox: { capacity: 1024 } } });
  const spawnMs = performance.now() - t0;
  let firstOutcomeMs = 0;
  const off = pipe.onOutcome(() => {
    firstOutcomeMs = performance.now() - t0;
    off();
  });
  if (pipe.stats().pending !== n) throw new Error(`recovered ${pipe.stats().pending} of ${n}`);
  await pipe.drain();
  const drainMs = performance.now() - t0;
  await system.shutdown();
  return { spawnMs, firstOutcomeMs, drainMs };
}

/** Peak RSS (MiB) of a fresh process that sends `n` tasks through the durable pipeline. */
export function peakRss(n: number): number {
  const out = execFileSync(process.execPath, ['--import', 'tsx', new URL('./durable-rss.ts', import.meta.url).pathname, String(n), dbPath()], { encoding: 'utf8' });
  return Number(out.trim());
}
