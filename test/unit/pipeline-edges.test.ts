import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal } from '../../system/index.js';
import { settle, testSystem } from '../support/helpers.js';

// Edge cases of the pipeline API found by a review (each test failed before its fix).

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
};
const hung = <T>(p: Promise<T>, turns = 20): Promise<T | 'hung'> => Promise.race([p, settle(turns).then(() => 'hung' as const)]);

describe('senders waiting for room', () => {
  it("hand the room on when a woken sender answers 'duplicate', so the next one is not left waiting beside an empty inbox", async () => {
    const { system } = testSystem();
    const g = gate();
    const pipe = system.spawnPipeline<string, string>({ name: 'p', stages: [agent({ name: 'a', handle: async (x: string) => (await g.opened, x), mailbox: { capacity: 1 } })] });
    await pipe.send('t0');
    await settle();
    await pipe.send('t1'); // fills the inbox
    const results: string[] = [];
    const a = pipe.send('A', { id: 'x' }).then((r) => results.push(`A:${r}`));
    const b = pipe.send('B', { id: 'x' }).then((r) => results.push(`B:${r}`));
    const c = pipe.send('C').then((r) => results.push(`C:${r}`));
    g.open();
    expect(await hung(Promise.all([a, b, c]), 40)).not.toBe('hung');
    expect(results).toEqual(['A:accepted', 'B:duplicate', 'C:accepted']);
  });
});

describe('send with a journal under the drop policy', () => {
  it('rejects an input the journal cannot hold instead of throwing into the caller', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const pipe = system.spawnPipeline<unknown, unknown>({ name: 'p', stages: [agent({ name: 'a', handle: () => new Promise(() => undefined), mailbox: { capacity: 1, overflow: 'drop' } })] });
    await pipe.send(1);
    await settle();
    await pipe.send(2);
    let thrown: unknown;
    let sent: Promise<unknown> | undefined;
    try {
      sent = pipe.send(() => 1);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeUndefined();
    await expect(sent).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
    await system.shutdown({ drainMs: 0 });
  });
});

describe('sendMany', () => {
  it('refuses what is not an iterable and options that are not { key: function }, with codes', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    await expect(pipe.sendMany(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
    await expect(pipe.sendMany([1], { key: 'k' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining('sendMany options') });
    expect(await pipe.sendMany([1, 2], { key: (x) => `k${x}` })).toBe(2);
  });

  it('says how many inputs went in when the pipeline stops part-way', async () => {
    const { system } = testSystem();
    const g = gate();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: async (x: number) => (await g.opened, x), mailbox: { capacity: 2 } })] });
    const many = pipe.sendMany([1, 2, 3, 4, 5, 6]);
    await settle();
    const stopped = pipe.stop({ drainMs: 0 });
    const err = await many.then(() => undefined, (e: unknown) => e);
    await stopped;
    expect(isBatonError(err, 'ERR_STOPPED')).toBe(true);
    expect((err as { details: { accepted: number } }).details.accepted).toBe(3); // one running, two queued
    expect((err as Error).message).toContain('3 input(s) were accepted before');
  });
});

describe('stopping', () => {
  it('makes shutdown wait for a stop already under way', async () => {
    const system = createSystem({ logger: false });
    const g = gate();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: async (x: number) => (await g.opened, x) })] });
    await pipe.send(1);
    await settle();
    const stopping = pipe.stop({ drainMs: 200 });
    await system.shutdown({ drainMs: 0 });
    expect(pipe.stats().status).toBe('stopped');
    await stopping;
  });

  it('rejects a drain() that waits, and one asked after, when a journal keeps tasks pending past the stop', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: () => new Promise<number>(() => undefined) })] });
    await pipe.send(1);
    const waiting = pipe.drain().then(() => 'resolved', (e: { code: string }) => e.code);
    await pipe.stop({ drainMs: 10 });
    expect(await hung(waiting)).toBe('ERR_STOPPED');
    await expect(pipe.drain()).rejects.toMatchObject({ code: 'ERR_STOPPED' });
    await system.shutdown();
  });
});

describe('the outcomes() iterator', () => {
  it('settles every pending next(), also two asked at once, and ends them at stop', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    const it = pipe.outcomes();
    const n1 = it.next();
    const n2 = it.next();
    const n3 = it.next();
    await pipe.send(1);
    await pipe.send(2);
    await settle();
    await pipe.stop();
    const got = await hung(Promise.all([n1, n2, n3]));
    expect(got).not.toBe('hung');
    const [r1, r2, r3] = got as IteratorResult<{ output?: number }>[];
    expect([r1!.value?.output, r2!.value?.output, r3!.done]).toEqual([1, 2, true]);
  });

  it('is done for every next() after return()', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    const it = pipe.outcomes();
    const pending = it.next();
    await it.return!();
    await pipe.send(1);
    await settle();
    expect(await hung(pending)).toMatchObject({ done: true });
    expect(await hung(it.next())).toMatchObject({ done: true });
  });
});
