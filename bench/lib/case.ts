// Runs one benchmark case in this (fresh) process and prints its figure: each case gets a clean JIT
// and heap, so one contender's warm-up or garbage does not tax the next.
import { batonBytesPerIdleAgent, batonBytesPerQueued, batonPipeline, batonPipelineIo, batonPipelineObserved, batonPipelineTraced, batonRestartLatency } from './baton.js';
import { nactBytesPerIdleActor, nactBytesPerQueued, nactChain, nactRestartLatency } from './nact.js';
import { naiveCoordinator, naiveCoordinatorIo } from './naive.js';
import { median } from './stats.js';
import { rawAsyncDispatcher } from './raw-async.js';
import { rawDispatcher } from './raw.js';
import { cleanup, durablePipeline, rawGroupedWrites, recovery } from '../durable.js';
import { batonDistributed3, batonDistributedSlow, batonNats3, rawJetStream3 } from '../nats.js';
import { batonThreadTrivial, cpuBound, idleThreadMemory, piscinaTrivial } from '../threads.js';

const [name, nArg] = process.argv.slice(2);
const n = Number(nArg);
// Steady state, for every contender alike: three warm-up runs of a fifth of the work (at least 50,000
// tasks where the run is that long: BENCH_QUICK's 20,000-task async runs measured a half-compiled
// runtime after 4,000-task warm-ups) and one of the whole, then the median of three measured runs.
// (The first full-size run of a process is not steady yet: Baton's sync pipeline ran 4.5-6.7 M
// tasks/s in it against 7.2-8.3 M in the runs after; the raw dispatcher was steady by then.)
const steady = async (f: (n: number) => Promise<number> | number): Promise<number> => {
  for (let i = 0; i < 3; i++) await f(Math.max(1, Math.floor(n / 5), Math.min(n, 50_000)));
  await f(n);
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push(await f(n));
  return median(runs);
};
const cases: Record<string, () => Promise<unknown> | unknown> = {
  raw: () => steady((k) => rawDispatcher(k)),
  'baton-sync': () => steady((k) => batonPipeline(k, 'sync')),
  'baton-async': () => steady((k) => batonPipeline(k, 'async')),
  'baton-sync-traced': () => steady((k) => batonPipelineTraced(k)),
  'baton-sync-observed': () => steady((k) => batonPipelineObserved(k)),
  'raw-async': () => steady((k) => rawAsyncDispatcher(k)),
  'raw-async-messages': () => steady((k) => rawAsyncDispatcher(k, 'messages')),
  'naive-1': () => steady((k) => naiveCoordinator(k, 5, 1)),
  'naive-64': () => steady((k) => naiveCoordinator(k, 5, 64)),
  'baton-io': () => batonPipelineIo(n, 1),
  'naive-io': () => naiveCoordinatorIo(n, 1),
  nact: () => steady((k) => nactChain(k)),
  'baton-restart': () => batonRestartLatency(n),
  'nact-restart': () => nactRestartLatency(n),
  'baton-queued': () => batonBytesPerQueued(n),
  'nact-queued': () => nactBytesPerQueued(n),
  'baton-idle': () => batonBytesPerIdleAgent(n),
  'nact-idle': () => nactBytesPerIdleActor(n),
  'sqlite-raw': () => rawGroupedWrites(n),
  'baton-durable': async () => {
    await durablePipeline(Math.floor(n / 10));
    return durablePipeline(n);
  },
  recovery: () => recovery(n),
  // One warm-up of a fifth, then the median of three: a NATS run is seconds long, not milliseconds.
  'nats-raw': () => steadyNats((k) => rawJetStream3(k)),
  'baton-nats': () => steadyNats((k) => batonNats3(k)),
  'baton-dist': () => steadyNats((k) => batonDistributed3(k)),
  // One run each (workers take a second to start): the ratio of the two is the figure.
  'baton-dist-slow-1': () => batonDistributedSlow(n, 1),
  'baton-dist-slow-2': () => batonDistributedSlow(n, 2),
  // Thread agents: a warm-up run of a fifth (workers loaded, JIT warm on both sides), then the median of three.
  'baton-thread-trivial': () => steadyThreads((k) => batonThreadTrivial(k)),
  'piscina-trivial': () => steadyThreads((k) => piscinaTrivial(k)),
  'cpu-inline': () => steadyThreads((k) => cpuBound(k, 0)),
  'cpu-threads-1': () => steadyThreads((k) => cpuBound(k, 1)),
  'cpu-threads-2': () => steadyThreads((k) => cpuBound(k, 2)),
  'cpu-threads-4': () => steadyThreads((k) => cpuBound(k, 4)),
  'thread-idle-mib': () => idleThreadMemory(n),
};
async function steadyThreads(f: (n: number) => Promise<number>): Promise<number> {
  await f(Math.max(1, Math.floor(n / 5)));
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push(await f(n));
  return median(runs);
}
async function steadyNats(f: (n: number) => Promise<number>): Promise<number> {
  await f(Math.max(1, Math.floor(n / 5)));
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push(await f(n));
  return median(runs);
}
const run = cases[name!];
if (run === undefined) throw new Error(`unknown case ${name}; one of ${Object.keys(cases).join(', ')}`);
const result = await run();
cleanup();
process.stdout.write(JSON.stringify(result) + '\n');
