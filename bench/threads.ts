// Thread agents (issue 15): what crossing the thread boundary costs, how a CPU-bound stage scales
// with threads on this machine, and what an idle thread agent costs in memory. Each function runs
// in a fresh process (bench/lib/case.ts) and returns one figure.
import type { Pipeline } from '../system/index.js';
import { spin } from './lib/thread-handlers.mjs';

// The package as built (dist/, which `npm run bench` builds first), as a user runs it: from the
// sources under tsx, every worker thread would load tsx too (about 20 MiB more per idle worker).
const { agent, createSystem } = (await import(new URL('../dist/system/index.js', import.meta.url).href)) as typeof import('../system/index.js');

const HANDLERS = new URL('./lib/thread-handlers.mjs', import.meta.url);

function* range(n: number, of: (i: number) => unknown = (i) => i): Generator<unknown> {
  for (let i = 0; i < n; i++) yield of(i);
}

async function timed(pipe: Pipeline<unknown, unknown>, inputs: Iterable<unknown>, n: number): Promise<number> {
  const t0 = performance.now();
  await pipe.sendMany(inputs);
  await pipe.drain();
  const s = (performance.now() - t0) / 1000;
  const stats = pipe.stats();
  if (stats.completed < n) throw new Error(`thread bench lost tasks: ${stats.completed} of ${n}`);
  return n / s;
}

/**
 * Tasks/s of x => x + 1 through one thread stage (1 worker): every task crosses into the worker and
 * back. Concurrency 1,024: the tasks a stage starts in one turn go over as one msgpack batch.
 */
export async function batonThreadTrivial(n: number): Promise<number> {
  const system = createSystem({ logger: false });
  const pipe = system.spawnPipeline<unknown, unknown>({
    name: 'bench',
    stages: [agent({ name: 't', module: HANDLERS, threads: 1, concurrency: 1_024, mailbox: { capacity: 4_096 } })],
  });
  await pipe.send(0, { id: 'warm' }); // the worker has loaded once this drains
  await pipe.drain();
  const rate = await timed(pipe, range(n), n + 1);
  await system.shutdown();
  return rate;
}

/**
 * The same work on piscina (a kept worker pool, 1 thread), one `run()` per task with up to 1,024 in
 * flight: the baseline a thread stage would have had on a pool that sends one message per task.
 */
export async function piscinaTrivial(n: number): Promise<number> {
  const { Piscina } = await import('piscina');
  const pool = new Piscina({ filename: HANDLERS.href, minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 1_024 });
  await pool.run(0);
  const t0 = performance.now();
  let next = 0;
  let sum = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const v = (await pool.run(next++)) as number; // not `sum += await ...`: that reads sum before the await
      sum += v;
    }
  };
  await Promise.all(Array.from({ length: 1_024 }, lane));
  const rate = n / ((performance.now() - t0) / 1000);
  await pool.destroy();
  if (sum !== (n * (n + 1)) / 2) throw new Error('piscina bench lost tasks');
  return rate;
}

/** Tasks/s of a 2 ms synchronous handler in the pipeline's own thread (threads 0) or on `threads` worker threads. */
export async function cpuBound(n: number, threads: number): Promise<number> {
  const system = createSystem({ logger: false });
  const stage =
    threads === 0
      ? agent({ name: 'cpu', handle: (x: { spinMs: number }) => spin(x.spinMs) })
      : agent({ name: 'cpu', module: HANDLERS, threads });
  const pipe = system.spawnPipeline<unknown, unknown>({ name: 'bench', stages: [stage], defaults: { mailbox: { capacity: 4_096 } } });
  await pipe.send({ spinMs: 1 }, { id: 'warm' });
  await pipe.drain();
  const rate = await timed(pipe, range(n, () => ({ spinMs: 2 })), n + 1);
  await system.shutdown();
  return rate;
}

/** RSS (MiB) an idle thread agent (1 worker, loaded) adds: `k` of them in one pipeline, measured against none. */
export async function idleThreadMemory(k: number): Promise<number> {
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  const system = createSystem({ logger: false });
  const pipe = system.spawnPipeline<unknown, unknown>({
    name: 'bench',
    stages: Array.from({ length: k }, (_, i) => agent({ name: `t${i}`, module: HANDLERS, threads: 1 })),
  });
  await pipe.send(0, { id: 'warm' }); // goes through all k stages: every worker has loaded
  await pipe.drain();
  await new Promise((r) => setTimeout(r, 200));
  globalThis.gc?.();
  const per = (process.memoryUsage().rss - before) / k / 2 ** 20;
  await system.shutdown();
  return per;
}
