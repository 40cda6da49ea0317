import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal } from '../../system/index.js';

// Issue 12, item 14: sendMany failing part-way rejected without saying how many inputs went in, so a
// caller who retried ran them twice. Every partial failure carries details.accepted and details.index.
async function failure(p: Promise<unknown>): Promise<{ code: string; accepted: unknown; index: unknown }> {
  try {
    await p;
  } catch (err) {
    if (!isBatonError(err)) throw err;
    return { code: err.code, accepted: err.details['accepted'], index: err.details['index'] };
  }
  throw new Error('sendMany did not reject');
}

const stage = agent({ name: 'a', handle: (x: unknown) => x });

describe('sendMany failing part-way', () => {
  it('says how many went in and which input failed when the journal cannot store one (a function at index 2)', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const pipe = system.spawnPipeline({ name: 'p', stages: [stage] });
    expect(await failure(pipe.sendMany([1, 2, () => 3, 4]))).toEqual({ code: 'ERR_INVALID_INPUT', accepted: 2, index: 2 });
    await pipe.drain();
    expect(pipe.stats().completed).toBe(2);
    await system.shutdown();
  });

  it('says so when the iterable itself throws after two inputs, in memory', async () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline({ name: 'p', stages: [stage] });
    function* inputs() {
      yield 1;
      yield 2;
      throw new Error('source broke');
    }
    expect(await failure(pipe.sendMany(inputs()))).toEqual({ code: 'ERR_INVALID_INPUT', accepted: 2, index: 2 });
    await system.shutdown();
  });

  it('says so when the key function throws at index 1', async () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline({ name: 'p', stages: [stage] });
    const key = (_x: unknown, i: number) => {
      if (i === 1) throw new Error('no key');
      return `k${i}`;
    };
    expect(await failure(pipe.sendMany([1, 2, 3], { key }))).toEqual({ code: 'ERR_INVALID_INPUT', accepted: 1, index: 1 });
    await system.shutdown();
  });
});
