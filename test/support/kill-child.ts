// A durable pipeline in a child process, for the kill tests (argv: JOURNAL STORE N FAULT [KILL_AFTER_MS]). It (re)sends tasks t-0..t-(N-1) with
// fixed ids, prints "ACK <id>" once a send has resolved, and "DONE" after a full drain. KILL_AFTER_MS, if
// given, kills it with SIGKILL that long after it started. The last
// stage writes to an idempotent store (a second SQLite file). FAULT picks a failure to be killed in:
//   none | backoff (stage 'check' fails the first two runs of every third task; long backoff)
//   breaker (stage 'check' fails everything for the first 300 ms of each process: the breaker holds)
//   killer (the task with input 10 kills the whole process whenever it runs at 'check')
//   threads (stage 'parse' is a thread agent on 2 worker threads: test/support/threads/ops.mjs doubles a number)
import Database from 'better-sqlite3';
import { agent, createSystem, natsJetStream, sqliteJournal } from '../../system/index.js';

// JOURNAL is a SQLite file's path, or 'nats://host:port#bucket'.
const [dbPath, storePath, nArg, fault = 'none', killArg] = process.argv.slice(2);
// The kill comes from inside (KILL_AFTER_MS, a SIGKILL all the same), timed on this process's own clock from
// its start: a timer in the parent test process fired late whenever the machine was busy (the suite runs
// several files at once on 2 cores), so the child had finished before its "random moment" came.
if (killArg !== undefined) setTimeout(() => process.kill(process.pid, 'SIGKILL'), Number(killArg)).unref();
const N = Number(nArg);
const store = new Database(storePath!);
store.pragma('journal_mode = WAL');
store.exec('CREATE TABLE IF NOT EXISTS store (id TEXT PRIMARY KEY, value INTEGER NOT NULL, writes INTEGER NOT NULL)');
const put = store.prepare('INSERT INTO store (id, value, writes) VALUES (?, ?, 1) ON CONFLICT (id) DO UPDATE SET writes = writes + 1');
const born = Date.now();

const [natsUrl, bucket] = dbPath!.split('#');
const journal = dbPath!.startsWith('nats://') ? await natsJetStream({ servers: natsUrl!, bucket: bucket ?? 'kill' }) : sqliteJournal(dbPath!);
const system = createSystem({ logger: false, journal });
const pipe = system.spawnPipeline<number, number>({
  name: 'kill',
  stages: [
    fault === 'threads'
      ? agent<number, number>({ name: 'parse', module: new URL('./threads/ops.mjs', import.meta.url), threads: 2, concurrency: 16 })
      : agent({ name: 'parse', handle: (n: number) => n * 2 }),
    agent({
      name: 'check',
      handle: async (n: number, ctx) => {
        await new Promise((r) => setTimeout(r, 1));
        if (fault === 'backoff' && ctx.attempt <= 2 && n % 3 === 0) throw new Error(`transient ${ctx.taskId}`);
        if (fault === 'breaker' && Date.now() - born < 300) throw new Error('dependency down');
        if (fault === 'killer' && n === 20) process.kill(process.pid, 'SIGKILL');
        if (n % 97 === 0 && n > 0) throw new Error(`poison ${n}`); // poison: dead-lettered every time
        return n + 1;
      },
      concurrency: 4,
      retry: { maxAttempts: fault === 'backoff' ? 4 : 3, backoff: { minMs: fault === 'backoff' ? 150 : 5, maxMs: 300 } },
      breaker: { threshold: 5, backoff: { minMs: 100, maxMs: 200 } },
    }),
    agent({ name: 'store', handle: (n: number, ctx) => (put.run(ctx.taskId, n), n) }),
  ],
  defaults: { mailbox: { capacity: 64 } },
});

for (let i = 0; i < N; i++) {
  // Paced, so that every round (even one that only re-sends) is still running when the kill lands.
  if (i % 25 === 24) await new Promise((r) => setTimeout(r, 5));
  const id = `t-${i}`;
  const r = await pipe.send(i, { id });
  process.stdout.write(`ACK ${id} ${r}\n`);
}
await pipe.drain();
process.stdout.write('DONE\n');
await system.shutdown();
store.close();
