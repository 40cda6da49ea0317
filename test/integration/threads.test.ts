import { afterEach, describe, expect, it } from 'vitest';
import { agent, BatonError, createSystem, type ActorSystem, type Outcome, type Pipeline } from '../../system/index.js';

// Thread agents run on real worker threads and real time. Kept small (1-2 threads, short runs):
// the machine that runs the suite has 2 cores.

const OPS = new URL('../support/threads/ops.mjs', import.meta.url);
const NO_HANDLE = new URL('../support/threads/no-handle.mjs', import.meta.url);
const HANG_INIT = new URL('../support/threads/hang-init.mjs', import.meta.url);
const quick = { minMs: 1, maxMs: 1, jitter: 0 };

let system: ActorSystem | undefined;
afterEach(async () => {
  await system?.shutdown();
  system = undefined;
});

function spawn<I = unknown, O = unknown>(stage: Parameters<typeof agent>[0] & object, more: object[] = []): { pipe: Pipeline<I, O>; outcomes: Outcome<O>[] } {
  system = createSystem({ logger: false });
  const pipe = system.spawnPipeline<I, O>({ name: 'p', stages: [agent(stage as never), ...more.map((s) => agent(s as never))] });
  const outcomes: Outcome<O>[] = [];
  pipe.onOutcome((o) => outcomes.push(o));
  return { pipe, outcomes };
}

/** Sends one task and waits for it: the workers have loaded their module once this returns. */
async function warm(pipe: Pipeline<any, any>): Promise<void> {
  await pipe.send(0, { id: 'warm' });
  await pipe.drain();
}

const byId = <O>(outcomes: Outcome<O>[], id: string): Outcome<O> => outcomes.find((o) => o.id === id)!;
const codes = (o: Outcome<unknown>): (string | undefined)[] => o.errors.map((e) => e.error.code);

describe('a thread agent', () => {
  it('runs its module in a worker and hands the output on, with ctx and the state from the module init', async () => {
    const seen: unknown[] = [];
    const { pipe, outcomes } = spawn({ name: 'double', module: OPS }, [{ name: 'after', handle: (x: unknown) => (seen.push(x), x) }]);
    await pipe.send(21, { id: 'n' });
    await pipe.send({ op: 'ctx' }, { id: 'c', key: 'k1' });
    await pipe.drain();
    expect(byId(outcomes, 'n')).toMatchObject({ status: 'completed', output: 42 });
    expect(byId(outcomes, 'c').output).toEqual({ taskId: 'c', key: 'k1', attempt: 1, stage: 'p/double', state: { loaded: true } });
    expect(seen).toContain(42);
  });

  it('fails a run whose handler throws like any handler: retried, then dead-lettered with ERR_TASK_FAILED and the thrown name and message', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, retry: { maxAttempts: 2, backoff: quick } });
    await pipe.send({ op: 'throw', n: 7 }, { id: 'bad' });
    await pipe.drain();
    const o = byId(outcomes, 'bad');
    expect(o).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_TASK_FAILED' }, attempts: 2 });
    expect(o.errors.map((e) => [e.error.name, e.error.message])).toEqual([
      ['RangeError', 'bad input 7'],
      ['RangeError', 'bad input 7'],
    ]);
  });

  it('refuses an input or an output that cannot cross the thread boundary with ERR_INVALID_INPUT naming the path', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, retry: { maxAttempts: 1 } });
    await warm(pipe);
    await pipe.send({ op: 'ctx', cb: () => 1 }, { id: 'in' });
    await pipe.send({ op: 'fn' }, { id: 'out' });
    await pipe.send(5, { id: 'fine' });
    await pipe.drain();
    expect(byId(outcomes, 'in')).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_INVALID_INPUT' } });
    expect(byId(outcomes, 'in').errors[0]!.error.message).toContain('$.cb is a function');
    expect(byId(outcomes, 'out')).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_INVALID_INPUT' } });
    expect(byId(outcomes, 'out').errors[0]!.error.message).toContain('$.later is a function');
    expect(byId(outcomes, 'fine')).toMatchObject({ status: 'completed', output: 10 });
  });
});

describe('hard kill: a thread run that outlives timeoutMs', () => {
  it('has its worker terminated, so a handler stuck in an endless loop is dead-lettered after maxAttempts while 10,000 other tasks complete', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, threads: 2, timeoutMs: 200, retry: { maxAttempts: 2, backoff: quick } });
    await warm(pipe);
    await pipe.send({ op: 'loop' }, { id: 'loop' });
    for (let i = 1; i <= 10_000; i++) await pipe.send(i, { id: `n${i}` });
    await pipe.drain();
    const loop = byId(outcomes, 'loop');
    expect(loop).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_TIMEOUT' }, attempts: 2 });
    expect(codes(loop)).toEqual(['ERR_TIMEOUT', 'ERR_TIMEOUT']);
    const others = outcomes.filter((o) => o.id !== 'loop' && o.id !== 'warm');
    expect(others).toHaveLength(10_000);
    expect(others.filter((o) => !(o.status === 'completed' && o.output === Number(o.id.slice(1)) * 2)).map((o) => [o.id, o.status, o.output, o.errors.map((e) => e.error.code)])).toEqual([]);
    expect(pipe.stats().stages[0]).toMatchObject({ completed: 10_001, deadLettered: 1 });
  });
});

describe('a task that shares a worker with a runaway', () => {
  it('is not charged a timeout for the time the runaway held its thread: it runs again in the next worker, uncharged', async () => {
    // One thread, room for 6 in it: both tasks go over in one batch, 'n' behind the endless loop (or
    // done, with its answer waiting for the batch to end). Both reach their deadline together.
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, threads: 1, concurrency: 6, timeoutMs: 150, breaker: false, retry: { maxAttempts: 2, backoff: quick } });
    await warm(pipe);
    await pipe.send({ op: 'loop' }, { id: 'loop' });
    await pipe.send(385, { id: 'n' });
    await pipe.drain();
    expect(byId(outcomes, 'loop')).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_TIMEOUT' }, attempts: 2 });
    expect(byId(outcomes, 'n')).toMatchObject({ status: 'completed', output: 770 });
    expect(byId(outcomes, 'n').errors).toEqual([]);
  });

  it('gets a whole timeoutMs in the worker it is sent to again after the runaway ahead of it was killed', async () => {
    // Two threads, two tasks each. 'loop' goes to worker 1; 'long' (900 ms) to worker 2; 'moved'
    // (600 ms) then ties and goes to worker 1, behind the endless loop. At 1,000 ms the loop's worker
    // is killed and 'moved' is sent to worker 2, where it runs its 600 ms; its first deadline (sent
    // at ~300 ms: ~1,300 ms) falls inside that run. It was charged ERR_TIMEOUT there (found by the
    // thread-agent property).
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, threads: 2, concurrency: 4, timeoutMs: 1000, breaker: false, retry: { maxAttempts: 1 } });
    await warm(pipe);
    await pipe.send({ op: 'loop' }, { id: 'loop' });
    await new Promise((r) => setTimeout(r, 20));
    await pipe.send({ op: 'sleep', ms: 900, n: 1 }, { id: 'long' });
    await new Promise((r) => setTimeout(r, 280));
    await pipe.send({ op: 'sleep', ms: 600, n: 2 }, { id: 'moved' });
    await pipe.drain();
    expect(byId(outcomes, 'loop')).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_TIMEOUT' } });
    expect(byId(outcomes, 'long')).toMatchObject({ status: 'completed', output: 1 });
    expect(byId(outcomes, 'moved')).toMatchObject({ status: 'completed', output: 2 });
  });
});

describe('a worker thread that dies by itself', () => {
  it('out of its 64 MB heap dies alone: its task is charged ERR_WORKER_MEMORY and dead-lettered, and the tasks sent with it complete', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, threads: 1, concurrency: 8, resourceLimits: { maxOldGenerationSizeMb: 64 }, retry: { maxAttempts: 1 } });
    await warm(pipe);
    const sends = [1, 2, 3, { op: 'hog' }, 4, 5, 6].map((x, i) => pipe.send(x, { id: `t${i}` }));
    await Promise.all(sends);
    await pipe.drain();
    const hog = byId(outcomes, 't3');
    expect(hog).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_WORKER_MEMORY' }, attempts: 1 });
    expect(hog.errors[0]!.error.message).toContain('maxOldGenerationSizeMb');
    for (const id of ['t0', 't1', 't2', 't4', 't5', 't6']) expect(byId(outcomes, id).status).toBe('completed');
    expect(byId(outcomes, 't6').output).toBe(12);
  });

  it('by process.exit in a handler, with several tasks in it, charges only the task that was running (ERR_WORKER_EXITED) and retries it', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, threads: 1, concurrency: 8, retry: { maxAttempts: 2, backoff: quick } });
    await warm(pipe);
    const sends = [1, 2, { op: 'exit' }, 3, 4, 5].map((x, i) => pipe.send(x, { id: `t${i}` }));
    await Promise.all(sends);
    await pipe.drain();
    const exit = byId(outcomes, 't2');
    expect(exit).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_WORKER_EXITED' }, attempts: 2 });
    expect(exit.errors[0]!.error.message).toContain('exited with code 3');
    for (const id of ['t0', 't1', 't3', 't4', 't5']) {
      expect(byId(outcomes, id)).toMatchObject({ status: 'completed', errors: [] });
    }
  });

  it('by an uncaught error in a timer charges the task whose promise was still pending (ERR_WORKER_EXITED), and the stage goes on', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: OPS, threads: 1, concurrency: 4, retry: { maxAttempts: 1 } });
    await warm(pipe);
    await pipe.send({ op: 'timer-throw' }, { id: 'timer' });
    await pipe.drain();
    await pipe.send({ op: 'async', n: 9 }, { id: 'next' });
    await pipe.drain();
    expect(byId(outcomes, 'timer')).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_WORKER_EXITED' } });
    expect(byId(outcomes, 'timer').errors[0]!.error.message).toContain('uncaught in a timer');
    expect(byId(outcomes, 'next')).toMatchObject({ status: 'completed', output: 9 });
  });

  it('that never becomes ready (its init never settles) is ended after startTimeoutMs: the runs fail with ERR_INVALID_OPTION, nothing hangs', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: HANG_INIT, startTimeoutMs: 300, retry: { maxAttempts: 1 }, breaker: false });
    await pipe.send(1, { id: 'a' });
    await pipe.drain();
    const a = byId(outcomes, 'a');
    expect(a).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_INVALID_OPTION' } });
    expect(a.errors[0]!.error.message).toMatch(/hang-init\.mjs did not load within 300 ms/);
  });

  it('before its module has loaded breaks the pool: every run fails with ERR_INVALID_OPTION naming the module', async () => {
    const { pipe, outcomes } = spawn({ name: 't', module: NO_HANDLE, retry: { maxAttempts: 1 }, breaker: false });
    await pipe.send(1, { id: 'a' });
    await pipe.drain();
    const a = byId(outcomes, 'a');
    expect(a.status).toBe('dead-lettered');
    expect(a.errors[0]!.error).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(a.errors[0]!.error.message).toContain('no-handle.mjs');
    expect(a.errors[0]!.error.message).toContain('exports no handle');
  });
});

describe('agent({ module }) validation', () => {
  const bad = (options: object): BatonError => {
    try {
      agent(options as never);
    } catch (err) {
      return err as BatonError;
    }
    throw new Error('agent() accepted bad options');
  };

  it('refuses a relative path, a missing file, and a non-file URL, naming the option', () => {
    expect(bad({ name: 'a', module: './x.js' })).toMatchObject({ code: 'ERR_INVALID_OPTION', details: { option: 'a.module' } });
    expect(bad({ name: 'a', module: new URL('../support/threads/missing.mjs', import.meta.url) }).message).toContain('existing file');
    expect(bad({ name: 'a', module: 'https://example.com/x.js' }).message).toContain('file');
  });

  it('refuses isolation thread without a module, a handle beside a module, bad threads, resourceLimits or startTimeoutMs, and a misspelt option', () => {
    expect(bad({ name: 'a', isolation: 'thread', handle: () => 1 }).message).toContain('cannot move to another thread');
    expect(bad({ name: 'a', module: OPS, handle: () => 1 }).details).toMatchObject({ option: 'a.handle' });
    expect(bad({ name: 'a', module: OPS, threads: 0 }).details).toMatchObject({ option: 'a.threads' });
    expect(bad({ name: 'a', module: OPS, threads: 1.5 }).details).toMatchObject({ option: 'a.threads' });
    expect(bad({ name: 'a', module: OPS, resourceLimits: { maxOldGenerationSizeMb: -1 } }).details).toMatchObject({ option: 'a.resourceLimits.maxOldGenerationSizeMb' });
    expect(bad({ name: 'a', module: OPS, resourceLimits: { heapMb: 64 } }).details).toMatchObject({ option: 'a.resourceLimits.heapMb' });
    expect(bad({ name: 'a', module: OPS, isolation: 'process' }).details).toMatchObject({ option: 'a.isolation' });
    expect(bad({ name: 'a', module: OPS, startTimeoutMs: 0 }).details).toMatchObject({ option: 'a.startTimeoutMs' });
    expect(bad({ name: 'a', module: OPS, threds: 2 }).message).toMatch(/unknown option 'threds'/);
  });

  it('gives a definition whose handle, called outside a pipeline, says to put it in one', () => {
    const def = agent({ name: 'a', module: OPS });
    expect(def).toMatchObject({ isolation: 'thread', threads: 1, module: OPS.href });
    expect(() => def.handle(1, undefined as never)).toThrow(/put it in a pipeline/);
  });
});
