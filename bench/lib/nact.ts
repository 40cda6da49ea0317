// nact 7.6.2 as the baseline: the same chain of trivial actors, its restart latency and its memory.
import { createRequire } from 'node:module';
import { heapUsed, median } from './stats.js';

const require = createRequire(import.meta.url);
const nact = require('nact') as {
  start(): unknown;
  spawn(parent: unknown, f: (state: unknown, msg: unknown, ctx: { reset: unknown }) => unknown, name?: string, props?: object): unknown;
  spawnStateless(parent: unknown, f: (msg: unknown) => unknown, name?: string): unknown;
  dispatch(actor: unknown, msg: unknown): void;
  stop(actor: unknown): void;
};

export async function nactChain(n: number, stages = 5): Promise<number> {
  const system = nact.start();
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  let done = 0;
  const sum = new Float64Array(1); // not a captured `let`: see baton.ts
  let next: unknown = nact.spawnStateless(system, (x) => {
    sum[0]! += x as number;
    if (++done === n) finish();
  });
  for (let s = 0; s < stages - 1; s++) {
    const target = next;
    next = nact.spawnStateless(system, (x) => nact.dispatch(target, (x as number) + 1));
  }
  const first = next;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) nact.dispatch(first, i + 1); // the last stage adds nothing: +1 per hop x 4, +1 here
  await finished;
  const secs = (performance.now() - t0) / 1000;
  nact.stop(system);
  if (sum[0] !== (n * (n - 1)) / 2 + stages * n) throw new Error('nact chain lost tasks');
  return n / secs;
}

/** Median microseconds from a throw to the next message's handler, with the actor reset on crash. */
export async function nactRestartLatency(samples: number): Promise<number> {
  const system = nact.start();
  const lat: number[] = [];
  let thrownAt = 0;
  let step!: () => void;
  const actor = nact.spawn(
    system,
    (state, msg) => {
      if (msg === 'boom') {
        thrownAt = performance.now();
        throw new Error('boom');
      }
      lat.push((performance.now() - thrownAt) * 1000);
      step();
      return state;
    },
    'crashy',
    { onCrash: (_m: unknown, _e: unknown, ctx: { reset: unknown }) => ctx.reset, initialStateFunc: () => ({ fresh: true }) },
  );
  for (let i = 0; i < samples; i++) {
    const handled = new Promise<void>((r) => (step = r));
    nact.dispatch(actor, 'boom');
    nact.dispatch(actor, 'ok');
    await handled;
  }
  nact.stop(system);
  return median(lat);
}

export async function nactBytesPerQueued(n: number): Promise<number> {
  const system = nact.start();
  const payload = { doc: 1 };
  const actor = nact.spawnStateless(system, () => new Promise(() => undefined));
  nact.dispatch(actor, payload);
  await new Promise((r) => setTimeout(r, 10));
  const before = heapUsed();
  for (let i = 0; i < n; i++) nact.dispatch(actor, payload);
  const after = heapUsed();
  nact.stop(system);
  return (after - before) / n;
}

export function nactBytesPerIdleActor(n: number): number {
  const system = nact.start();
  const before = heapUsed();
  for (let i = 0; i < n; i++) nact.spawnStateless(system, () => undefined, `a${i}`);
  const after = heapUsed();
  nact.stop(system);
  return (after - before) / n;
}
