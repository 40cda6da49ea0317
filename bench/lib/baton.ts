import http from 'node:http';
// Baton's side of every comparison, on the in-memory default (no journal).
import { agent, createSystem, runChannel, type ActorSystem, type Pipeline } from '../../system/index.js';
import { heapUsed, median, tick } from './stats.js';

function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** Sends 0..n-1, waits for every outcome, shuts down; tasks/s from the first send to the drain. */
async function sendAndDrain(system: ActorSystem, pipe: Pipeline<number, number>, n: number): Promise<{ rate: number; completed: number }> {
  const t0 = performance.now();
  await pipe.sendMany(range(n));
  await pipe.drain();
  const rate = n / ((performance.now() - t0) / 1000);
  const completed = pipe.stats().completed;
  await system.shutdown();
  return { rate, completed };
}

/** Tasks/s through a 5-stage pipeline of x => x + 1 (sync) or async x => x + 1 with `concurrency` per stage. */
export async function batonPipeline(n: number, mode: 'sync' | 'async', stages = 5, concurrency = 64, observed = false): Promise<number> {
  const system = createSystem({ logger: false });
  // With the live page open and a browser-like client on its event stream (a snapshot every 500 ms).
  if (observed) await watchPage(system);
  // The checksum lives in a Float64Array: a captured `let sum` past 2^31 is a heap number, and every
  // `sum +=` in a closure allocates a new one (~5% of this benchmark); raw.ts keeps its sum local.
  const sum = new Float64Array(1);
  const handle = mode === 'sync' ? (x: number) => x + 1 : async (x: number) => x + 1;
  // The last stage checks the work (as the raw dispatcher does); outcomes are counted by the pipeline.
  const last = mode === 'sync' ? (x: number) => ((sum[0]! += x + 1), x + 1) : async (x: number) => ((sum[0]! += x + 1), x + 1);
  const pipe = system.spawnPipeline<number, number>({
    name: 'bench',
    stages: Array.from({ length: stages }, (_, i) => agent({ name: `s${i + 1}`, handle: i === stages - 1 ? last : handle })),
    defaults: { mailbox: { capacity: 1024 }, ...(mode === 'async' ? { concurrency } : {}) },
  });
  const { rate, completed } = await sendAndDrain(system, pipe, n);
  if (sum[0] !== (n * (n - 1)) / 2 + stages * n || completed !== n) throw new Error(`baton ${mode} lost tasks`);
  return rate;
}

/** Median microseconds from a handler's throw to the next handler start (worker restarted with fresh state, zero backoff). */
export async function batonRestartLatency(samples: number): Promise<number> {
  const system = createSystem({ logger: false });
  const lat: number[] = [];
  let thrownAt = 0;
  let step!: () => void;
  const pipe = system.spawnPipeline<string, string>({
    name: 'restart',
    stages: [
      agent({
        name: 'crashy',
        init: () => ({ fresh: true }),
        handle: (msg: string) => {
          if (msg === 'boom') {
            thrownAt = performance.now();
            throw new Error('boom');
          }
          lat.push((performance.now() - thrownAt) * 1000);
          step();
          return msg;
        },
        retry: { maxAttempts: 1 },
        breaker: false,
        restart: { maxRestarts: 1_000_000 },
      }),
    ],
  });
  for (let i = 0; i < samples; i++) {
    const handled = new Promise<void>((r) => (step = r));
    void pipe.send('boom');
    void pipe.send('ok');
    await handled;
  }
  await system.shutdown();
  return median(lat);
}

/** Heap bytes per task waiting in an inbox (beyond its payload: every task shares one payload object). */
export async function batonBytesPerQueued(n: number): Promise<number> {
  const system = createSystem({ logger: false });
  const payload = { doc: 1 };
  const pipe = system.spawnPipeline<object, object>({
    name: 'queued',
    stages: [agent({ name: 'blocked', handle: () => new Promise<object>(() => undefined), mailbox: { capacity: n + 1 }, timeoutMs: Infinity })],
  });
  await pipe.send(payload);
  await tick();
  const before = heapUsed();
  const inputs = { *[Symbol.iterator]() { for (let i = 0; i < n; i++) yield payload; } };
  await pipe.sendMany(inputs);
  const after = heapUsed();
  if (pipe.stats().stages[0]!.inbox !== n) throw new Error('tasks did not queue');
  await system.shutdown({ drainMs: 0 });
  return (after - before) / n;
}

/** Heap bytes per idle agent: one pipeline of `n` stages that never receive a task. */
export async function batonBytesPerIdleAgent(n: number): Promise<number> {
  const system = createSystem({ logger: false });
  const defs = Array.from({ length: n }, (_, i) => agent({ name: `a${i}`, handle: (x: number) => x }));
  const before = heapUsed();
  system.spawnPipeline({ name: 'idle', stages: defs });
  const after = heapUsed();
  await system.shutdown();
  return (after - before) / n;
}

/** The same pipeline over handlers that wait `ioMs`, `concurrency` runs in flight per agent. */
export async function batonPipelineIo(n: number, ioMs: number, stages = 5, concurrency = 64): Promise<number> {
  const system = createSystem({ logger: false });
  const io = (x: number) => new Promise<number>((r) => setTimeout(() => r(x + 1), ioMs));
  const pipe = system.spawnPipeline<number, number>({
    name: 'io',
    stages: Array.from({ length: stages }, (_, i) => agent({ name: `s${i + 1}`, handle: io })),
    defaults: { mailbox: { capacity: 1024 }, concurrency },
  });
  const { rate, completed } = await sendAndDrain(system, pipe, n);
  if (completed !== n) throw new Error('baton lost tasks');
  return rate;
}

/**
 * The sync pipeline while a tool traces every run on the baton:run diagnostics channel (no-op
 * subscribers): what observing costs. Without a subscriber the channel costs one boolean read per batch.
 */
/** Opens the live page and keeps a client reading its Server-Sent Events (closed with the system). */
async function watchPage(system: ActorSystem): Promise<void> {
  const page = await system.observe({ port: 0 });
  await new Promise<void>((resolve, reject) => {
    const req = http.get(new URL('events', page.url), (res) => {
      res.on('data', () => undefined);
      res.on('error', () => undefined);
      resolve();
    });
    req.on('error', reject);
  });
}

/** Tasks/s of the 5-stage sync pipeline while the live page is open with a client on its event stream. */
export function batonPipelineObserved(n: number): Promise<number> {
  return batonPipeline(n, 'sync', 5, 64, true);
}

export async function batonPipelineTraced(n: number): Promise<number> {
  const noop = (): void => undefined;
  const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
  runChannel.subscribe(handlers);
  try {
    return await batonPipeline(n, 'sync');
  } finally {
    runChannel.unsubscribe(handlers);
  }
}
