import { describe, expect, it } from 'vitest';
import { actor, agent, describeValue, toErrorInfoForTests } from './hostile-support.js';
import { drainOn, testSystem, collect, settle } from '../support/helpers.js';

// Issue 12, item 1: whatever a handler, init or receive returns or throws, the process survives and
// the failure is a task failure (or an actor crash) with a safe description.
const trap = () => {
  throw new Error('trap');
};
const hostileProxy = () => new Proxy({}, { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, apply: trap });
const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};
const thenGetterThrows = () => Object.defineProperty({}, 'then', { get: trap });

describe('describing hostile values never throws', () => {
  it.each([
    ['a Proxy whose every trap throws', hostileProxy],
    ['a revoked Proxy', revoked],
    ['an object whose then getter throws', thenGetterThrows],
    ['an Error whose name and message getters throw', () => Object.defineProperties(new Error('x'), { name: { get: trap }, message: { get: trap } })],
    ['an object whose Symbol.toPrimitive throws', () => ({ [Symbol.toPrimitive]: trap })],
    ['a null-prototype object', () => Object.create(null) as object],
  ])('%s', (_what, make) => {
    const value = make();
    expect(() => toErrorInfoForTests(value)).not.toThrow();
    expect(typeof toErrorInfoForTests(value).message).toBe('string');
    expect(() => describeValue(value)).not.toThrow();
  });
});

describe('a handler that produces a hostile value', () => {
  it.each([
    ['returns an object whose then getter throws', () => thenGetterThrows()],
    ['returns a Proxy whose every trap throws', () => hostileProxy()],
    ['throws a Proxy whose every trap throws', () => {
      throw hostileProxy();
    }],
    ['rejects with a Proxy whose every trap throws', () => Promise.reject(hostileProxy())],
    ['throws a revoked Proxy', () => {
      throw revoked();
    }],
  ])('%s: the task is dead-lettered with ERR_TASK_FAILED and the rest complete', async (_what, bad) => {
    for (const [lane, handle] of [
      ['bare', (x: number) => (x === 2 ? bad() : x)],
      ['ctx', (x: number, _ctx: unknown) => (x === 2 ? bad() : x)],
    ] as const) {
      const { system, clock } = testSystem();
      const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: handle as (x: number) => number, retry: { maxAttempts: 1 } })] });
      const outcomes = collect(pipe);
      await pipe.sendMany([1, 2, 3]);
      await drainOn(clock, pipe);
      expect(outcomes.map((o) => [o.id, o.status, o.error?.code]).sort(), lane).toEqual([
        ['p-1', 'completed', undefined],
        ['p-2', 'dead-lettered', 'ERR_TASK_FAILED'],
        ['p-3', 'completed', undefined],
      ]);
      await system.shutdown();
    }
  });

  it('an init that returns an object whose then getter throws is an init failure, retried, not a crash', async () => {
    let calls = 0;
    const { system, clock, events } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', init: () => (++calls === 1 ? (thenGetterThrows() as never) : 0), handle: (x: number, _ctx) => x })] });
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(pipe.stats().completed).toBe(1);
    expect(events.some((e) => e.type === 'crashed' && e.path === 'p/a')).toBe(true);
  });

  it('a plain actor whose receive returns an object whose then getter throws crashes as any failing receive does', async () => {
    const { system } = testSystem();
    const ref = system.spawn(actor({ receive: (_s: undefined, m: number) => (m === 1 ? thenGetterThrows() : undefined) as never }), { name: 'x' });
    ref.tell(1);
    await settle();
    expect(system.deadLetters.count).toBe(1); // the message it crashed on (a top-level actor stops)
    expect(ref.tell(2)).toBe('stopped');
  });
});

describe('an init that returns a thenable whose then() throws', () => {
  it('is an init failure, retried after the restart backoff, not an uncaught exception', async () => {
    let calls = 0;
    const { system, clock } = testSystem();
    const bad = { then: () => { throw new Error('then() threw'); } };
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', init: () => (++calls === 1 ? (bad as never) : 0), handle: (x: number, _ctx) => x })] });
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(pipe.stats().completed).toBe(1);
    expect(calls).toBe(2);
  });
});
