// The naive coordinator: each agent awaits its handler, then awaits the next agent inside its retry
// loop (so a downstream failure re-runs every upstream stage). `window` tasks are in flight at once.

class NaiveAgent {
  constructor(
    private readonly handle: (x: number) => Promise<number>,
    private readonly next: NaiveAgent | undefined,
  ) {}

  async process(task: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.handle(task);
        return this.next === undefined ? out : await this.next.process(out);
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }
}

export async function naiveCoordinator(n: number, stages = 5, window = 64): Promise<number> {
  let chain: NaiveAgent | undefined;
  for (let s = 0; s < stages; s++) chain = new NaiveAgent(async (x) => x + 1, chain);
  let next = 0;
  const sum = new Float64Array(1); // not a captured `let`: see baton.ts
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n) {
        const out = await chain!.process(next++);
        sum[0]! += out;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  if (sum[0] !== (n * (n - 1)) / 2 + stages * n) throw new Error('naive coordinator lost tasks');
  return n / secs;
}

/** The same coordinator over handlers that wait `ioMs` (a model call, a database write). */
export async function naiveCoordinatorIo(n: number, ioMs: number, stages = 5, window = 64): Promise<number> {
  let chain: NaiveAgent | undefined;
  const io = (x: number) => new Promise<number>((r) => setTimeout(() => r(x + 1), ioMs));
  for (let s = 0; s < stages; s++) chain = new NaiveAgent(io, chain);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n) {
        next++;
        await chain!.process(next);
        done++;
      }
    }),
  );
  if (done !== n) throw new Error('naive coordinator lost tasks');
  return n / ((performance.now() - t0) / 1000);
}
