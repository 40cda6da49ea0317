import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, type Outcome } from '../../system/index.js';
import { fixed, range } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

const byId = (outcomes: Outcome[]) => Object.fromEntries(outcomes.map((o) => [o.id, o]));

describe('pipeline.cancel(id)', () => {
  it('ends a waiting task at once as a dead letter with ERR_CANCELLED; its handler never runs and the rest complete', async () => {
    const { system, clock } = testSystem();
    const ran: number[] = [];
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: async (x: number) => (await new Promise<void>((r) => clock.setTimer(10, r)), ran.push(x), x) })] });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(5));
    await settle();
    expect(pipe.cancel('p-4', 'the user closed the tab')).toBe(true);
    await drainOn(clock, pipe);
    expect(ran).not.toContain(3);
    expect(byId(outcomes)['p-4']).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_CANCELLED', message: 'task p-4 was cancelled: the user closed the tab' } });
    expect(outcomes).toHaveLength(5);
    expect(pipe.stats()).toMatchObject({ pending: 0, completed: 4, deadLettered: 1 });
  });

  it("aborts a running task's signal, discards its late result, and reports one outcome", async () => {
    const { system, clock } = testSystem();
    const aborted: string[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({
        name: 'a',
        concurrency: 2,
        handle: async (x: number, ctx) => {
          ctx.signal.addEventListener('abort', () => aborted.push(ctx.taskId));
          await new Promise<void>((r) => clock.setTimer(100, r));
          return x;
        },
      })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2]);
    await settle();
    expect(pipe.stats().stages[0]!.inFlight).toBe(2);
    expect(pipe.cancel('p-1')).toBe(true);
    expect(aborted).toEqual(['p-1']);
    expect(pipe.stats().stages[0]!.inFlight).toBe(1);
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => [o.id, o.status])).toEqual([['p-1', 'dead-lettered'], ['p-2', 'completed']]);
  });

  it('cancels a task waiting out its retry backoff without waiting for it', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', retry: { backoff: fixed(60_000) }, breaker: false, handle: () => { throw new Error('flaky'); } })] });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await settle();
    expect(pipe.stats().stages[0]!.inbox).toBe(1); // in `delayed`
    expect(pipe.cancel('p-1')).toBe(true);
    await settle();
    expect(outcomes).toMatchObject([{ id: 'p-1', status: 'dead-lettered', error: { code: 'ERR_CANCELLED' } }]);
    expect(clock.now()).toBe(0);
  });

  it('cancels a task parked behind its key; the next task of that key still runs in order', async () => {
    const { system, clock } = testSystem();
    const ran: string[] = [];
    const pipe = system.spawnPipeline<string, string>({ name: 'p', stages: [agent({ name: 'a', orderByKey: true, concurrency: 4, handle: async (x: string) => (await new Promise<void>((r) => clock.setTimer(10, r)), ran.push(x), x) })] });
    for (const x of ['k1', 'k2', 'k3']) await pipe.send(x, { key: 'k', id: x });
    await settle();
    expect(pipe.cancel('k2')).toBe(true);
    await drainOn(clock, pipe);
    expect(ran).toEqual(['k1', 'k3']);
  });

  it('answers false for an unknown or finished task and refuses a bad id with ERR_INVALID_OPTION', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    await pipe.send(1);
    await pipe.drain();
    expect(pipe.cancel('p-1')).toBe(false);
    expect(pipe.cancel('nope')).toBe(false);
    try {
      pipe.cancel('' as string);
      expect.unreachable();
    } catch (err) {
      expect(isBatonError(err) && err.code).toBe('ERR_INVALID_OPTION');
    }
  });

  it('gives a fanned-out task one outcome when it is cancelled while its branches wait', async () => {
    const { system, clock } = testSystem();
    const slow = (name: string) => agent({ name, handle: async (x: number) => (await new Promise<void>((r) => clock.setTimer(50, r)), x) });
    const pipe = system.spawnPipeline<number, unknown>({
      name: 'p',
      stages: [agent({ name: 'split', handle: (x: number) => x, route: () => ['left', 'right'] }), slow('left'), slow('right')],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2]);
    await settle();
    expect(pipe.cancel('p-2')).toBe(true);
    await drainOn(clock, pipe);
    expect(outcomes.filter((o) => o.id === 'p-2')).toMatchObject([{ status: 'dead-lettered', error: { code: 'ERR_CANCELLED' } }]);
    expect(outcomes.filter((o) => o.id === 'p-1')).toMatchObject([{ status: 'completed' }]);
  });
});

describe('pipeline.cancel(id) with a journal', () => {
  it('records the cancel: a new process sees the dead letter, and replay brings the task back', async () => {
    const journal = memoryJournal();
    const gate = { open: false };
    const first = createSystem({ logger: false, journal });
    const a = first.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: async (x: number) => { while (!gate.open) await new Promise((r) => setTimeout(r, 5)); return x; } })] });
    await a.sendMany([1, 2]);
    expect(a.cancel('p-2')).toBe(true);
    gate.open = true;
    await a.drain();
    await first.shutdown();
    expect(journal.openPipeline('p').outcome('p-2')).toMatchObject({ status: 'dead', code: 'ERR_CANCELLED' });
    const second = createSystem({ logger: false, journal });
    const b = second.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    expect(b.deadLetters().map((o) => [o.id, o.error?.code])).toEqual([['p-2', 'ERR_CANCELLED']]);
    expect(b.replay(['p-2'])).toBe(1);
    await b.drain();
    expect(b.outcome('p-2')).toMatchObject({ status: 'completed', output: 2 });
    await second.shutdown();
  });

  it('cancels a recovered task still in the backlog on disk, before it is paged in', async () => {
    const journal = memoryJournal();
    const first = createSystem({ logger: false, journal });
    const never = first.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: () => new Promise<number>(() => undefined) })], defaults: { mailbox: { capacity: 100 } } });
    await never.sendMany(range(30));
    await first.shutdown({ drainMs: 0 });
    const second = createSystem({ logger: false, journal });
    const ran: number[] = [];
    const pipe = second.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => (ran.push(x), x) })], defaults: { mailbox: { capacity: 4 } } });
    const outcomes = collect(pipe);
    expect(pipe.cancel('p-30')).toBe(true); // the last of the backlog: not in memory yet
    await pipe.drain();
    expect(ran).not.toContain(29);
    expect(outcomes).toHaveLength(30);
    expect(byId(outcomes)['p-30']).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_CANCELLED' } });
    expect(journal.openPipeline('p').outcome('p-30')).toMatchObject({ status: 'dead', code: 'ERR_CANCELLED' });
    await second.shutdown();
  });
});
