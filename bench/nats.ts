// NATS benchmarks: Baton's 3-stage pipeline on the NATS JetStream journal against a raw JetStream
// loop through 3 stages in the same run (the same server, payload size and in-flight window).
// The server URL comes from BENCH_NATS_URL (bench/run.ts starts a nats-server for the run).
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { agent, createSystem, natsJetStream } from '../system/index.js';

const url = (): string => {
  const u = process.env['BENCH_NATS_URL'];
  if (u === undefined) throw new Error('BENCH_NATS_URL is not set: bench/run.ts starts a nats-server and sets it');
  return u;
};
const unique = () => `${process.pid}x${Date.now().toString(36)}`;
const payload = () => ({ doc: 1, text: 'lorem ipsum dolor sit amet' });

/**
 * Tasks/s of a raw 3-stage JetStream loop: a work-queue stream, one durable consumer per stage,
 * each message published on to the next stage's subject with its ack awaited (256 publishes in
 * flight per stage, as the notes measured), the input acked after that; the producer keeps 256
 * publishes in flight. What a per-hop transport built on JetStream could at best do here.
 */
export async function rawJetStream3(n: number): Promise<number> {
  // noAsyncTraces as Baton connects (src/journal/nats.ts): without it each publish makes two Errors for their stacks.
  const nc = await connect({ servers: url(), noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = `RAW${unique()}`;
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  for (const s of [1, 2, 3]) await jsm.consumers.add(stream, { durable_name: `s${s}`, filter_subject: `${stream}.s${s}`, ack_policy: AckPolicy.Explicit, max_ack_pending: 1024 });
  const body = new TextEncoder().encode(JSON.stringify(payload()));
  let done = 0;
  const t0 = performance.now();
  const finished = new Promise<void>((resolve) => {
    for (const s of [1, 2, 3]) {
      void js.consumers.get(stream, `s${s}`).then((c) =>
        c.consume({
          max_messages: 256,
          callback: (m) => {
            if (s === 3) {
              m.ack();
              if (++done === n) resolve();
              return;
            }
            js.publish(`${stream}.s${s + 1}`, m.data).then(() => m.ack(), () => m.nak());
          },
        }),
      );
    }
  });
  let inFlight = 0;
  let wake: (() => void) | undefined;
  for (let i = 0; i < n; i++) {
    while (inFlight >= 256) await new Promise<void>((r) => (wake = r));
    inFlight++;
    void js.publish(`${stream}.s1`, body).finally(() => {
      inFlight--;
      wake?.();
    });
  }
  await finished;
  const rate = n / ((performance.now() - t0) / 1000);
  await jsm.streams.delete(stream);
  await nc.close();
  return rate;
}

/** Tasks/s through 3 trivial stages on the NATS journal (each task: accept, 2 handoffs, completion, start records). */
export async function batonNats3(n: number): Promise<number> {
  const bucket = `bench${unique()}`;
  const journal = await natsJetStream({ servers: url(), bucket });
  const system = createSystem({ logger: false, journal });
  const stages = [1, 2, 3].map((i) => agent({ name: `s${i}`, handle: (x: { doc: number; text: string }) => x }));
  const pipe = system.spawnPipeline({ name: 'bench', stages, defaults: { mailbox: { capacity: 1024 } } });
  const t0 = performance.now();
  await pipe.sendMany((function* () {
    for (let i = 0; i < n; i++) yield payload();
  })());
  await pipe.drain();
  const rate = n / ((performance.now() - t0) / 1000);
  await system.shutdown();
  const nc = await connect({ servers: url() });
  await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`);
  await nc.close();
  return rate;
}

/**
 * Tasks/s through 3 trivial stages of a distributed pipeline hosted by this one process (every
 * handoff through the server), with up to 256 sends in flight, as the raw loop has.
 */
export async function batonDistributed3(n: number): Promise<number> {
  const system = createSystem({ logger: false, journal: await natsJetStream({ servers: url() }) });
  const stages = [1, 2, 3].map((i) => agent({ name: `s${i}`, concurrency: 64, handle: (x: { doc: number; text: string }) => x }));
  const pipe = await system.joinPipeline({ name: `bench${unique()}`, stages, host: ['s1', 's2', 's3'] });
  const t0 = performance.now();
  await sendWindowed(pipe, n, 256);
  await pipe.drain();
  const rate = n / ((performance.now() - t0) / 1000);
  await system.shutdown();
  return rate;
}

async function sendWindowed(pipe: { send(input: unknown): Promise<unknown> }, n: number, window: number): Promise<void> {
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    while (inFlight >= window) await new Promise<void>((r) => (wake = r));
    inFlight++;
    all.push(
      pipe.send(payload()).finally(() => {
        inFlight--;
        wake?.();
      }),
    );
  }
  await Promise.all(all);
}

const HOST_CHILD = new URL('./lib/nats-host.ts', import.meta.url).pathname;

/**
 * Tasks/s of a pipeline whose middle stage takes 5 ms a task, one at a time, hosted by `replicas`
 * worker processes (started before the clock runs); this process sends and hosts the other two.
 */
export async function batonDistributedSlow(n: number, replicas: number): Promise<number> {
  const { spawn } = await import('node:child_process');
  const name = `slow${unique()}`;
  const children = await Promise.all(
    Array.from({ length: replicas }, () =>
      new Promise<import('node:child_process').ChildProcess>((resolve, reject) => {
        const c = spawn(process.execPath, ['--import', 'tsx', HOST_CHILD, url(), name], { stdio: ['ignore', 'pipe', 'inherit'] });
        c.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve(c));
        c.once('exit', (code) => reject(new Error(`bench host exited ${code}`)));
      }),
    ),
  );
  const system = createSystem({ logger: false, journal: await natsJetStream({ servers: url() }) });
  const pipe = await system.joinPipeline({ name, stages: slowStages(), host: ['in', 'out'] });
  const t0 = performance.now();
  await sendWindowed(pipe, n, 256);
  await pipe.drain();
  const rate = n / ((performance.now() - t0) / 1000);
  await system.shutdown();
  for (const c of children) c.kill('SIGKILL');
  return rate;
}

/** in -> slow (5 ms a task, one at a time: a model with one slot per worker) -> out. */
export function slowStages() {
  return [
    agent({ name: 'in', handle: (x: unknown) => x }),
    agent({ name: 'slow', handle: async (x: unknown) => (await new Promise((r) => setTimeout(r, 5)), x) }),
    agent({ name: 'out', handle: (x: unknown) => x }),
  ];
}
