import type { agent as agentFn } from '../../system/index.js';

/**
 * The stages of the distributed kill test, shared by its processes (see dist-child.ts). With `kill`
 * (the SIGKILL test's variant), 'parse' fans every task whose output is a multiple of 10 out to
 * 'check' and 'store' (a join across processes); the others go to 'check'. 'store' orders by key.
 */
export function distStages(agent: typeof agentFn, kill = false) {
  return [
    kill ? agent({ name: 'parse', handle: (n: number) => n * 2, route: (n: number) => (n % 10 === 0 ? ['check', 'store'] : 'check') }) : agent({ name: 'parse', handle: (n: number) => n * 2 }),
    agent({
      name: 'check',
      concurrency: 4,
      retry: { maxAttempts: 3, backoff: { minMs: 5, maxMs: 50 } },
      handle: async (n: number, ctx) => {
        await new Promise((r) => setTimeout(r, 1));
        if (n % 97 === 0 && n > 0) throw new Error(`poison ${n}`);
        if (n % 7 === 0 && ctx.attempt === 1) throw new Error(`transient ${ctx.taskId}`);
        return n;
      },
    }),
    // Orders by key: across processes its tasks go through key partitions (one in hand at a time each).
    agent({ name: 'store', orderByKey: true, handle: (n: number) => n + 1 }),
  ];
}
