import { describe, expect, it } from 'vitest';
import { agent, type SendResult } from '../../system/index.js';
import { fixed, gate, range } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

type Branch = { stage: string; output: string };

describe('routing', () => {
  it('sends each output where route says, hands route the task context, and completes early on null', async () => {
    const { system, clock } = testSystem();
    const seen: string[] = [];
    const pipe = system.spawnPipeline<number, string>({
      name: 'p',
      stages: [
        agent({ name: 'sort', handle: (x: number) => x, route: (x: number, ctx) => (seen.push(`${ctx.taskId}/${ctx.stage}/${ctx.attempt}`), x < 0 ? null : x > 9 ? 'big' : 'small') }),
        agent({ name: 'small', handle: (x: number) => `small ${x}`, route: () => null }),
        agent({ name: 'big', handle: (x: number) => `big ${x}` }),
      ],
    });
    const outcomes = collect(pipe);
    for (const x of [-1, 3, 42]) await pipe.send(x, { id: `x${x}` });
    await drainOn(clock, pipe);
    const by = Object.fromEntries(outcomes.map((o) => [o.id, o]));
    expect(by['x-1']).toMatchObject({ status: 'completed', output: -1, stage: 'sort' });
    expect(by['x3']).toMatchObject({ status: 'completed', output: 'small 3', stage: 'small' });
    expect(by['x42']).toMatchObject({ status: 'completed', output: 'big 42', stage: 'big' });
    expect(seen.sort()).toEqual(['x-1/sort/1', 'x3/sort/1', 'x42/sort/1']);
    expect(pipe.stats().stages.map((s) => [s.name, s.received])).toEqual([['sort', 3], ['small', 1], ['big', 1]]);
  });

  it('can send a task back to the stage it came from until the router ends it', async () => {
    const { system, clock } = testSystem();
    let runs = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'loop', handle: (x: number) => (runs++, x + 1), route: (x: number) => (x < 5 ? 'loop' : null) })],
    });
    const outcomes = collect(pipe);
    await pipe.send(0);
    await drainOn(clock, pipe);
    expect(outcomes).toMatchObject([{ status: 'completed', output: 5 }]);
    expect(runs).toBe(5);
  });

  it('dead-letters a task routed to an unknown stage with ERR_UNKNOWN_ADDRESS, and the other tasks go on', async () => {
    const { system, clock, events } = testSystem();
    const pipe = system.spawnPipeline<string, string>({
      name: 'p',
      stages: [agent({ name: 'a', handle: (s: string) => s, route: (s: string) => s }), agent({ name: 'b', handle: (s: string) => s.toUpperCase() })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(['b', 'nowhere', 'b']);
    await drainOn(clock, pipe);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered');
    expect(dead).toMatchObject([{ stage: 'a', error: { code: 'ERR_UNKNOWN_ADDRESS', message: expect.stringContaining("'nowhere'") } }]);
    expect(outcomes.filter((o) => o.status === 'completed').map((o) => o.output)).toEqual(['B', 'B']);
    expect(events.filter((e) => e.type === 'dead-lettered')).toHaveLength(1);
  });

  it('fans out: every branch runs once and the task ends in one outcome holding each branch output', async () => {
    const { system, clock } = testSystem();
    const runs: string[] = [];
    const branch = (name: string) => agent({ name, handle: (x: number, ctx) => (runs.push(`${name}:${ctx.taskId}`), `${name} ${x}`), route: () => null });
    const pipe = system.spawnPipeline<number, Branch[]>({
      name: 'p',
      stages: [agent({ name: 'split', handle: (x: number) => x, route: () => ['en', 'fr', 'de'] }), branch('en'), branch('fr'), branch('de')],
    });
    const outcomes = collect(pipe);
    await pipe.send(1, { id: 'one' });
    await pipe.send(2, { id: 'two' });
    await drainOn(clock, pipe);
    expect(outcomes).toHaveLength(2);
    for (const o of outcomes) {
      if (o.status !== 'completed') throw new Error(`expected completed, got ${o.status}`);
      const n = o.id === 'one' ? 1 : 2;
      expect([...o.output].sort((a, b) => a.stage.localeCompare(b.stage))).toEqual([
        { stage: 'de', output: `de ${n}` },
        { stage: 'en', output: `en ${n}` },
        { stage: 'fr', output: `fr ${n}` },
      ]);
    }
    expect(runs.sort()).toEqual(['de:one', 'de:two', 'en:one', 'en:two', 'fr:one', 'fr:two']);
    expect(pipe.stats()).toMatchObject({ accepted: 2, completed: 2, pending: 0 });
  });

  it('ends a fanned-out task in one dead-lettered outcome when a branch is dead-lettered', async () => {
    const { system, clock } = testSystem();
    let goodRuns = 0;
    const pipe = system.spawnPipeline<number, Branch[]>({
      name: 'p',
      stages: [
        agent({ name: 'split', handle: (x: number) => x, route: () => ['good', 'bad', 'missing'] }),
        agent({ name: 'good', handle: (x: number) => (goodRuns++, x), route: () => null }),
        agent({ name: 'bad', handle: () => { throw new Error('branch broke'); }, retry: { maxAttempts: 2, backoff: fixed(1) } }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    await settle();
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.status).toBe('dead-lettered');
    expect(goodRuns).toBe(1);
    expect(pipe.stats()).toMatchObject({ accepted: 1, deadLettered: 1, completed: 0, pending: 0 });
  });

  it('treats a router that throws as a failure of its stage: the handler reruns, nothing goes downstream, then a dead letter', async () => {
    const { system, clock } = testSystem();
    let handled = 0;
    let downstream = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({ name: 'a', handle: (x: number) => (handled++, x), route: () => { throw new Error('router bug'); }, retry: { backoff: fixed(5) } }),
        agent({ name: 'b', handle: (x: number) => (downstream++, x) }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(outcomes).toMatchObject([{ status: 'dead-lettered', stage: 'a', attempts: 3, error: { code: 'ERR_TASK_FAILED', message: 'router bug' } }]);
    expect([handled, downstream]).toEqual([3, 0]);
  });

  it.each([[42], [{ to: 'b' }], [true]])('contains a router that returns %j instead of a name, a list or null', async (bad) => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: (x: number) => x, route: ((x: number) => (x === 1 ? bad : 'b')) as never, retry: { maxAttempts: 1 } }), agent({ name: 'b', handle: (x: number) => x })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2, 3]);
    await drainOn(clock, pipe, 10_000);
    expect(outcomes.find((o) => o.output === undefined || o.status === 'dead-lettered')).toMatchObject({ status: 'dead-lettered', stage: 'a' });
    expect(outcomes.filter((o) => o.status === 'completed').map((o) => o.output).sort()).toEqual([2, 3]);
  });
});

describe('back-pressure', () => {
  it('keeps later senders waiting, in order, until the first inbox has room, and never holds more than its capacity', async () => {
    const { system, clock } = testSystem();
    const gates = range(10).map(() => gate());
    const started: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'slow', mailbox: { capacity: 3 }, handle: async (x: number) => (started.push(x), await gates[x]!.opened, x) })],
    });
    const results: SendResult[] = [];
    const sends = range(10).map((x) => pipe.send(x).then((r) => (results.push(r), r)));
    await settle();
    expect(results).toHaveLength(4);
    for (let x = 0; x < 6; x++) {
      expect(pipe.stats().stages[0]!.inbox).toBeLessThanOrEqual(3);
      gates[x]!.open();
      await settle();
      expect(results, `opening task ${x} made room for one more sender`).toHaveLength(Math.min(10, 5 + x));
    }
    gates.forEach((g) => g.open());
    expect(await Promise.all(sends)).toEqual(Array(10).fill('accepted'));
    await drainOn(clock, pipe);
    expect(started).toEqual(range(10));
  });

  it('stops upstream handoffs while the next stage is full, and loses nothing once it drains', async () => {
    const { system, clock } = testSystem();
    const g = gate();
    let upstream = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      defaults: { mailbox: { capacity: 2 } },
      stages: [agent({ name: 'fast', handle: (x: number) => (upstream++, x) }), agent({ name: 'slow', handle: async (x: number) => (await g.opened, x) })],
    });
    const outcomes = collect(pipe);
    const sends = Promise.all(range(20).map((x) => pipe.send(x)));
    await settle(10);
    const [fast, slow] = pipe.stats().stages;
    expect(slow).toMatchObject({ inFlight: 1, inbox: 2 });
    expect(fast!.inbox).toBe(2);
    expect(upstream, 'upstream ran only what the downstream inbox can take, plus one waiting output').toBeLessThanOrEqual(4);
    expect(pipe.stats().accepted).toBeLessThanOrEqual(7);
    g.open();
    await sends;
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => o.output as number).sort((a, b) => a - b)).toEqual(range(20));
    expect(upstream).toBe(20);
  });

  it("answers 'rejected' when the first inbox is full under overflow 'reject', and no task is created", async () => {
    const { system, clock } = testSystem();
    const g = gate();
    const seen: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', mailbox: { capacity: 2, overflow: 'reject' }, handle: async (x: number) => (seen.push(x), await g.opened, x) })],
    });
    const outcomes = collect(pipe);
    const results = [];
    for (const x of range(6)) {
      results.push(await pipe.send(x));
      await settle();
    }
    expect(results).toEqual(['accepted', 'accepted', 'accepted', 'rejected', 'rejected', 'rejected']);
    expect(await pipe.sendMany([7, 8])).toBe(0);
    g.open();
    await drainOn(clock, pipe);
    expect(seen).toEqual([0, 1, 2]);
    expect(outcomes).toHaveLength(3);
    expect(pipe.stats()).toMatchObject({ accepted: 3, completed: 3, deadLettered: 0 });
  });

  it("answers 'dropped' under overflow 'drop' and dead-letters the task with ERR_MAILBOX_FULL, keeping the accounts", async () => {
    const { system, clock } = testSystem();
    const g = gate();
    const seen: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', mailbox: { capacity: 1, overflow: 'drop' }, handle: async (x: number) => (seen.push(x), await g.opened, x) })],
    });
    const outcomes = collect(pipe);
    const results = [];
    for (const x of range(4)) {
      results.push(await pipe.send(x, { id: `t${x}` }));
      await settle();
    }
    expect(results).toEqual(['accepted', 'accepted', 'dropped', 'dropped']);
    expect(outcomes.map((o) => [o.id, o.status, o.stage, o.error?.code])).toEqual([
      ['t2', 'dead-lettered', 'a', 'ERR_MAILBOX_FULL'],
      ['t3', 'dead-lettered', 'a', 'ERR_MAILBOX_FULL'],
    ]);
    g.open();
    await drainOn(clock, pipe);
    expect(seen).toEqual([0, 1]);
    const s = pipe.stats();
    expect([s.accepted, s.completed, s.deadLettered, s.pending]).toEqual([4, 2, 2, 0]);
  });
});
