// Runs one benchmark case in this (fresh) process and prints its figure: each case gets a clean JIT
// and heap, so one contender's warm-up or garbage does not tax the next.
import { batonBytesPerIdleAgent, batonBytesPerQueued, batonPipeline, batonPipelineIo, batonRestartLatency } from './baton.js';
import { nactBytesPerIdleActor, nactBytesPerQueued, nactChain, nactRestartLatency } from './nact.js';
import { naiveCoordinator, naiveCoordinatorIo } from './naive.js';
import { rawAsyncDispatcher } from './raw-async.js';
import { rawDispatcher } from './raw.js';
import { cleanup, durablePipeline, rawGroupedWrites, recovery } from '../durable.js';

const [name, nArg] = process.argv.slice(2);
const n = Number(nArg);
// Steady state, for every contender alike: three warm-up runs of a fifth of the work, or of 50,000
// tasks where that is more and the run is as long (the JIT has settled after them; BENCH_QUICK's 20,000-task async runs measured a
// half-compiled runtime at a fifth of its speed with 4,000-task warm-ups), then the measured run.
const twice = async (f: (n: number) => Promise<number> | number): Promise<number> => {
  for (let i = 0; i < 3; i++) await f(Math.max(1, Math.floor(n / 5), Math.min(n, 50_000)));
  return f(n);
};
const cases: Record<string, () => Promise<unknown> | unknown> = {
  raw: () => twice((k) => rawDispatcher(k)),
  'baton-sync': () => twice((k) => batonPipeline(k, 'sync')),
  'baton-async': () => twice((k) => batonPipeline(k, 'async')),
  'raw-async': () => twice((k) => rawAsyncDispatcher(k)),
  'naive-1': () => twice((k) => naiveCoordinator(k, 5, 1)),
  'naive-64': () => twice((k) => naiveCoordinator(k, 5, 64)),
  'baton-io': () => batonPipelineIo(n, 1),
  'naive-io': () => naiveCoordinatorIo(n, 1),
  nact: () => twice((k) => nactChain(k)),
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
};
const run = cases[name!];
if (run === undefined) throw new Error(`unknown case ${name}; one of ${Object.keys(cases).join(', ')}`);
const result = await run();
cleanup();
process.stdout.write(JSON.stringify(result) + '\n');
