import type { agent as agentFn } from '../../system/index.js';

/** Tasks that ran at 'check' in this process (the kill variant's transient failures: see below). */
const ranHere = new Set<string>();

/**
 * The stages of the distributed kill test, shared by its processes (see dist-child.ts). With `kill`
 * (the SIGKILL test's variant), every stage orders by key, so a key's tasks pass the pipeline in the
 * order they were sent, and 'parse' fans every task whose output is a multiple of 10 out to 'check'
 * and 'store' (a join across processes); the others go to 'check'.
 *
 * 'check' fails every seventh task once. Without `kill`, on its first attempt (ctx.attempt 1). With
 * `kill`, on its first run in each process: a run the breaker excuses is not charged, so ctx.attempt
 * stays 1 and a task that fails "on attempt 1" fails every probe too. When a process held only such
 * tasks of an ordered stage (the five that opened its breaker), their keys waited for maxHoldMs (5 min)
 * by design; a transient failure that passes on the next run does not do that.
 */
export function distStages(agent: typeof agentFn, kill = false) {
  const transient = (n: number, id: string, attempt: number): boolean => {
    if (n % 7 !== 0) return false;
    if (!kill) return attempt === 1;
    if (ranHere.has(id)) return false;
    ranHere.add(id);
    return true;
  };
  return [
    kill ? agent({ name: 'parse', orderByKey: true, handle: (n: number) => n * 2, route: (n: number) => (n % 10 === 0 ? ['check', 'store'] : 'check') }) : agent({ name: 'parse', handle: (n: number) => n * 2 }),
    agent({
      name: 'check',
      orderByKey: kill,
      concurrency: 4,
      retry: { maxAttempts: 3, backoff: { minMs: 5, maxMs: 50 } },
      handle: async (n: number, ctx) => {
        await new Promise((r) => setTimeout(r, 1));
        if (n % 97 === 0 && n > 0) throw new Error(`poison ${n}`);
        if (transient(n, ctx.taskId, ctx.attempt)) throw new Error(`transient ${ctx.taskId}`);
        return n;
      },
    }),
    // Orders by key: across processes its tasks go through key partitions (one in hand at a time each).
    agent({ name: 'store', orderByKey: true, handle: (n: number) => n + 1 }),
  ];
}
