import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsJetStream, seededRandom, sqliteJournal, type AttemptError, type Journal } from '../../system/index.js';
import { decode } from '../../src/codec.js';
import { natsMissing, startNatsServer, warnNatsMissing, type NatsServer } from '../../testkit/nats-server.js';

warnNatsMissing();

const CHILD = new URL('../support/kill-child.ts', import.meta.url).pathname;
const ROUNDS = Number(process.env['BATON_KILL_ROUNDS'] ?? 20);
const SEED = Number(process.env['BATON_KILL_SEED'] ?? Date.now() % 100_000);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Round {
  acked: Set<string>;
  done: boolean;
}

/** Runs the child once; it kills itself with SIGKILL `killAfterMs` after it started (undefined: let it finish). */
function runChild(db: string, storeDb: string, n: number, fault: string, killAfterMs?: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const args = [CHILD, db, storeDb, String(n), fault, ...(killAfterMs === undefined ? [] : [String(killAfterMs)])];
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const round: Round = { acked: new Set(), done: false };
    let buf = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('ACK ')) round.acked.add(line.split(' ')[1]!);
        if (line === 'DONE') round.done = true;
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A backstop only: a child that outlives its own kill by far has hung.
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs + 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve(round);
    });
  });
}

/** Where the child keeps its journal: a SQLite file in `dir`, or the NATS server (a fresh bucket per run). */
type Backend = { readonly name: string; journalArg(dir: string): string; open(arg: string): Promise<Journal> };
const sqliteBackend: Backend = {
  name: 'SQLite',
  journalArg: (dir) => join(dir, 'journal.db'),
  open: async (path) => sqliteJournal(path, { readonly: true }),
};

async function killRounds(fault: string, rounds: number, n: number, killWindow: [number, number], backend: Backend = sqliteBackend) {
  const dir = mkdtempSync(join(tmpdir(), 'baton-kill-'));
  dirs.push(dir);
  const db = backend.journalArg(dir);
  const storeDb = join(dir, 'store.db');
  const random = seededRandom(SEED);
  const acked = new Set<string>();
  let kills = 0;
  for (let r = 0; r < rounds; r++) {
    const at = killWindow[0] + Math.floor(random() * (killWindow[1] - killWindow[0]));
    const round = await runChild(db, storeDb, n, fault, at);
    round.acked.forEach((id) => acked.add(id));
    if (!round.done) kills++;
  }
  // The final runs go to the end (a task that kills the process may need a few more restarts).
  let last = await runChild(db, storeDb, n, fault);
  for (let extra = 0; !last.done && extra < 8; extra++) {
    last.acked.forEach((id) => acked.add(id));
    last = await runChild(db, storeDb, n, fault);
  }
  last.acked.forEach((id) => acked.add(id));
  expect(last.done, 'the final run drains').toBe(true);

  // Read through the journal port, the same way for every backend.
  const journal = await backend.open(db);
  const part = journal.openPipeline('kill');
  const rows: { id: string; status: number; errors: Uint8Array | null }[] = [];
  for (let i = 0; i < n; i++) {
    const id = `t-${i}`;
    const st = part.status(id);
    if (st === undefined) continue;
    const errors = st === 'pending' ? part.task(id)?.errors : part.outcome(id)?.errors;
    rows.push({ id, status: st === 'pending' ? 0 : st === 'completed' ? 1 : 2, errors: errors ?? null });
  }
  const counts = part.counts();
  await journal.close();
  expect(counts.pending + counts.completed + counts.dead, 'no task outside t-0..t-(n-1) was invented').toBe(rows.length);
  const store = new Database(storeDb, { readonly: true });
  const stored = new Map((store.prepare('SELECT id, writes FROM store').all() as { id: string; writes: number }[]).map((r) => [r.id, r.writes]));
  store.close();

  const status = new Map(rows.map((r) => [r.id, r.status]));
  const missing = [...acked].filter((id) => !status.has(id));
  const unfinished = [...acked].filter((id) => status.get(id) === 0);
  const completed = rows.filter((r) => r.status === 1).map((r) => r.id);
  const dead = rows.filter((r) => r.status === 2).map((r) => r.id);
  expect({ missing, unfinished }, `seed ${SEED}: every acknowledged task has exactly one outcome`).toEqual({ missing: [], unfinished: [] });
  expect(rows.length, 'no task was invented').toBe(n);
  expect(completed.filter((id) => !stored.has(id)), 'every completed task is in the store').toEqual([]);
  expect([...stored.keys()].filter((id) => status.get(id) !== 1), 'the store holds only completed tasks').toEqual([]);
  // Poison: every 97th input (n > 0) fails at 'check' every time. Any other dead letter must have been
  // running, alone, when a kill landed (charged ERR_PROCESS_DIED): that is the crash-loop guard at work.
  const poison = [...Array(n).keys()].filter((i) => (i * 2) % 97 === 0 && i > 0).map((i) => `t-${i}`);
  expect(poison.filter((id) => !dead.includes(id)), 'every poison task is dead-lettered').toEqual([]);
  const diedIn = (id: string) => {
    const row = rows.find((r) => r.id === id)!;
    return (row.errors === null ? [] : decode<AttemptError[]>(row.errors)).some((e) => e.error.code === 'ERR_PROCESS_DIED');
  };
  const unexplained = dead.filter((id) => !poison.includes(id) && !diedIn(id));
  expect(unexplained, 'no healthy task is dead-lettered except by isolated crashes').toEqual([]);
  return { kills, acked: acked.size, dead, diedIn, reruns: [...stored.values()].filter((w) => w > 1).length };
}

// Kill windows are in ms after the child's own start (it kills itself; see kill-child.ts): tsx takes another
// 250-400 ms before that, which the windows measured from spawn used to include. A child sends its tasks
// paced (5 ms per 25: 1,500 tasks take at least 300 ms), so a kill within the first 300 ms lands mid-batch
// even in a round that only re-sends duplicates; later kills could land after DONE (8 of 20 did once).
describe('a durable pipeline killed with SIGKILL at random moments', () => {
  it(`loses no acknowledged task and records each outcome once over ${ROUNDS} rounds of random SIGKILLs (seed in the message)`, async () => {
    const r = await killRounds('none', ROUNDS, 1500, [20, 320]);
    expect(r.kills, "most rounds were killed mid-batch").toBeGreaterThanOrEqual(Math.ceil(ROUNDS / 2));
    expect(r.acked).toBe(1500);
  }, 240_000);

  it('loses nothing when killed while tasks wait out a retry backoff', async () => {
    const r = await killRounds('backoff', 4, 300, [200, 550]);
    expect(r.kills, "some rounds were killed mid-batch").toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('loses nothing and dead-letters no healthy task when killed while the breaker holds', async () => {
    const r = await killRounds('breaker', 4, 150, [100, 300]);
    expect(r.kills, "some rounds were killed mid-batch").toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('dead-letters a task that kills the process every time it runs, after maxAttempts isolated crashes', async () => {
    const r = await killRounds('killer', 0, 60, [0, 0]);
    expect(r.dead).toContain('t-10');
    expect(r.diedIn('t-10')).toBe(true);
  }, 120_000);

  it('loses nothing when a stage runs in worker threads (killed while they load, and while they run)', async () => {
    // The paced sends of 1,500 tasks take at least 300 ms: kills from 50 ms land while workers load and while they run.
    const r = await killRounds('threads', 6, 1500, [50, 450]);
    expect(r.kills, 'some rounds were killed mid-batch').toBeGreaterThanOrEqual(3);
    expect(r.acked).toBe(1500);
  }, 180_000);

  it('loses nothing when killed during recovery itself', async () => {
    // The first rounds build a backlog; the later kills land while the next process is still starting up.
    const r = await killRounds('none', 6, 400, [30, 270]);
    expect(r.acked).toBe(400);
  }, 120_000);
});

// The same kill rounds with the journal on a NATS JetStream server (nats-server on a loopback port):
// the child process dies, the server keeps what it acknowledged, the next child resumes from it.
describe.skipIf(natsMissing !== '')('a pipeline journaled on NATS JetStream, killed with SIGKILL at random moments', () => {
  let server: NatsServer;
  let bucket = 0;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const nats = (): Backend => {
    // Each run gets a bucket of its own: the child is told the URL, the bucket follows from it.
    const name = `kill${bucket++}`;
    return {
      name: 'NATS',
      journalArg: () => `${server.url}#${name}`,
      open: async () => natsJetStream({ servers: server.url, bucket: name }),
    };
  };

  it(`loses no acknowledged task and records each outcome once over ${Math.min(ROUNDS, 10)} rounds (seed in the message)`, async () => {
    const rounds = Math.min(ROUNDS, 10);
    const r = await killRounds('none', rounds, 1500, [20, 320], nats());
    expect(r.kills, 'most rounds were killed mid-batch').toBeGreaterThanOrEqual(Math.ceil(rounds / 2));
    expect(r.acked).toBe(1500);
  }, 240_000);

  it('dead-letters a task that kills the process every time it runs, after maxAttempts isolated crashes', async () => {
    const r = await killRounds('killer', 0, 60, [0, 0], nats());
    expect(r.dead).toContain('t-10');
    expect(r.diedIn('t-10')).toBe(true);
  }, 120_000);
});
