import { describe, expect, it } from 'vitest';
import { agent, isBatonError } from '../../system/index.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
};

describe('a bounded inbox', () => {
  it('makes send wait while the first inbox is full (back-pressure), and never holds more than its capacity', async () => {
    const { system, clock } = testSystem();
    const g = gate();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'slow', handle: async (x: number) => (await g.opened, x), mailbox: { capacity: 3 } })],
    });
    const results: string[] = [];
    for (let i = 0; i < 4; i++) expect(await pipe.send(i)).toBe('accepted'); // 1 running + 3 waiting
    const waiting = pipe.send(4).then((r) => results.push(r));
    await settle();
    expect(results).toEqual([]);
    expect(pipe.stats().stages[0]!.inbox).toBe(3);
    g.open();
    await waiting;
    expect(results).toEqual(['accepted']);
    await drainOn(clock, pipe);
    expect(pipe.stats().completed).toBe(5);
  });

  it("answers 'rejected' under the reject policy and creates no task", async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: () => new Promise<number>(() => undefined), mailbox: { capacity: 1, overflow: 'reject' } })] });
    expect(await pipe.send(1)).toBe('accepted');
    await settle();
    expect(await pipe.send(2)).toBe('accepted');
    expect(await pipe.send(3)).toBe('rejected');
    expect(pipe.stats().accepted).toBe(2);
  });

  it("dead-letters the new task with ERR_MAILBOX_FULL under the drop policy", async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: () => new Promise<number>(() => undefined), mailbox: { capacity: 1, overflow: 'drop' } })] });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await settle();
    await pipe.send(2);
    expect(await pipe.send(3)).toBe('dropped');
    expect(outcomes).toMatchObject([{ status: 'dead-lettered', error: { code: 'ERR_MAILBOX_FULL' } }]);
  });

  it('stops handing on when the next inbox is full and loses nothing when it drains', async () => {
    const { system, clock } = testSystem();
    const g = gate();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'fast', handle: (x: number) => x, mailbox: { capacity: 2 } }), agent({ name: 'slow', handle: async (x: number) => (await g.opened, x), mailbox: { capacity: 2 } })],
    });
    const sends = Promise.all([...Array(10).keys()].map((i) => pipe.send(i)));
    await settle(10);
    const [fast, slow] = pipe.stats().stages;
    expect(slow!.inbox).toBeLessThanOrEqual(2);
    expect(fast!.inbox).toBeLessThanOrEqual(2);
    expect(pipe.stats().accepted).toBeLessThan(10);
    g.open();
    await sends;
    await drainOn(clock, pipe);
    expect(pipe.stats()).toMatchObject({ accepted: 10, completed: 10, pending: 0 });
  });
});

describe('routing', () => {
  const stages = (route: (x: number) => string | string[] | null) => [
    agent({ name: 'classify', handle: (x: number) => x, route }),
    // Without route, a stage hands on to the next in the list: the branches end the task explicitly.
    agent({ name: 'even', handle: (x: number) => `even ${x}`, route: () => null }),
    agent({ name: 'odd', handle: (x: number) => `odd ${x}` }),
  ];

  it('sends each output where route says, completes on null, and dead-letters an unknown name with ERR_UNKNOWN_ADDRESS', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, string>({ name: 'p', stages: stages((x) => (x === 0 ? null : x === 9 ? 'nine' : x % 2 ? 'odd' : 'even')) });
    const outcomes = collect(pipe);
    for (const x of [0, 1, 2, 9]) await pipe.send(x, { id: `x${x}` });
    await drainOn(clock, pipe);
    const by = Object.fromEntries(outcomes.map((o) => [o.id, o]));
    expect(by['x0']).toMatchObject({ status: 'completed', output: 0, stage: 'classify' });
    expect(by['x1']).toMatchObject({ status: 'completed', output: 'odd 1', stage: 'odd' });
    expect(by['x2']).toMatchObject({ status: 'completed', output: 'even 2', stage: 'even' });
    expect(by['x9']).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_UNKNOWN_ADDRESS', message: expect.stringContaining("'nine'") } });
  });

  it('fans out to several stages and joins the branches into one outcome per task', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, string>({ name: 'p', stages: stages(() => ['even', 'odd']) });
    const outcomes = collect(pipe);
    await pipe.send(4);
    await drainOn(clock, pipe);
    expect(outcomes).toHaveLength(1);
    expect((outcomes[0]!.output as unknown as { stage: string; output: string }[]).map((b) => b.output).sort()).toEqual(['even 4', 'odd 4']);
  });

  it('treats a router that throws as a failure of its stage: retried, then dead-lettered, and the runtime goes on', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, string>({ name: 'p', stages: stages((x) => { if (x === 3) throw new Error('router bug'); return 'even'; }) });
    const outcomes = collect(pipe);
    await pipe.sendMany([3, 4]);
    await drainOn(clock, pipe);
    expect(outcomes.find((o) => o.error)).toMatchObject({ status: 'dead-lettered', stage: 'classify', attempts: 3, error: { message: 'router bug' } });
    expect(outcomes.find((o) => o.status === 'completed')).toMatchObject({ output: 'even 4' });
  });
});

describe('bad input', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return isBatonError(e) ? `${e.code}: ${e.message}` : String(e);
    }
    return 'no error';
  };
  const a = agent({ name: 'a', handle: (x: number) => x });

  it.each([
    [{ name: 'p', stages: [a, a] }, /ERR_DUPLICATE_NAME: .*two stages named 'a'/],
    [{ name: 'p', stages: [] }, /ERR_INVALID_OPTION: .*stages must be a non-empty array/],
    [{ name: 'p', stages: [{ name: 'x', handle: () => 1 }] }, /ERR_INVALID_OPTION: .*stages\[0\] must be made with agent/],
    [{ name: 'bad name!', stages: [a] }, /ERR_INVALID_OPTION: pipeline name/],
    [{ name: 'p', stages: [a], defaults: { retry: { maxAttempts: 0 } } }, /ERR_INVALID_OPTION: .*retry.maxAttempts must be an integer >= 1; got 0/],
    [{ name: 'p', stages: [a], defaults: { timeoutMs: -1 } }, /ERR_INVALID_OPTION: .*timeoutMs/],
    [{ name: 'p', stages: [a], defaults: { concurrency: 1.5 } }, /ERR_INVALID_OPTION: .*concurrency must be an integer >= 1; got 1.5/],
    [{ name: 'p', stages: [a], defaults: { mailbox: { capacity: 0 } } }, /ERR_INVALID_OPTION: .*mailbox.capacity/],
    [{ name: 'p', stages: [a], defaults: { mailbox: { overflow: 'nope' } } }, /ERR_INVALID_OPTION: .*overflow must be 'back-pressure', 'reject' or 'drop'; got "nope"/],
    [{ name: 'p', stages: [a], defaults: { breaker: { threshold: 0 } } }, /ERR_INVALID_OPTION: .*breaker.threshold/],
  ])('spawnPipeline(%j) throws a BatonError naming the bad value', (options, expected) => {
    const { system } = testSystem();
    expect(code(() => system.spawnPipeline(options as never))).toMatch(expected);
  });

  it('refuses an agent without a handler, naming the agent', () => {
    expect(code(() => agent({ name: 'x' } as never))).toMatch(/ERR_INVALID_OPTION: agent 'x': handle must be a function/);
  });

  it('rejects a send with a non-string key, and any send after stop, with typed errors', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [a] });
    await expect(pipe.send(1, { key: 7 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await pipe.stop();
    await expect(pipe.send(1)).rejects.toMatchObject({ code: 'ERR_STOPPED' });
    await system.shutdown();
    expect(code(() => system.spawnPipeline({ name: 'q', stages: [a] }))).toMatch(/ERR_STOPPED/);
  });

  it('survives listeners and handlers that throw', async () => {
    const { system, clock } = testSystem();
    system.events.on(() => {
      throw new Error('observer bug');
    });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'b', handle: (x: number) => { if (x === 1) throw new Error('handler bug'); return x; }, retry: { maxAttempts: 1 } })] });
    pipe.onOutcome(() => {
      throw new Error('listener bug');
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2]);
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['completed', 'dead-lettered']);
  });

  it('dead-letters what is still pending at shutdown with ERR_STOPPED and ends outcome iterators', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'hang', handle: () => new Promise<number>(() => undefined) })] });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const o of pipe.outcomes()) seen.push(`${o.status} ${o.error?.code}`);
    })();
    await pipe.sendMany([1, 2, 3]);
    await system.shutdown({ drainMs: 1 });
    await reading;
    expect(seen).toEqual(['dead-lettered ERR_STOPPED', 'dead-lettered ERR_STOPPED', 'dead-lettered ERR_STOPPED']);
  });
});
