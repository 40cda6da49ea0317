import { describe, expect, it } from 'vitest';
import { agent } from '../../system/index.js';
import { range, sleep } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

// Edge cases of the agent supervisor found by a review (each test failed before its fix).

describe('the agent supervisor, edge cases', () => {
  it('starts the restart backoff again at minMs once init has succeeded', async () => {
    const { system, clock } = testSystem();
    const initAt: number[] = [];
    let failTask = true;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          restart: { backoff: { minMs: 100, maxMs: 10_000, factor: 2, jitter: 0 } },
          init: () => {
            initAt.push(clock.now());
            if (initAt.length <= 3 || initAt.length === 5) throw new Error('init');
            return {};
          },
          handle: (x: number, _ctx) => {
            if (failTask) {
              failTask = false;
              throw new Error('once');
            }
            return x;
          },
        }),
      ],
    });
    await clock.advance(10_000);
    expect(initAt).toEqual([0, 100, 300, 700]); // three failed inits, 100 / 200 / 400 ms apart
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(initAt[5]! - initAt[4]!).toBe(100); // a later failing init waits minMs again, not 800 ms
  });

  it('dead-letters no healthy task in an outage when the handler is slower than the retry backoff (all defaults)', async () => {
    const { system, clock } = testSystem();
    let down = true;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'llm',
          handle: async (x: number, _ctx) => {
            await sleep(clock, 1_000);
            if (down) throw new Error('api down');
            return x;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(20));
    await clock.advance(60_000);
    down = false;
    await drainOn(clock, pipe, 3_600_000, 100);
    expect(outcomes.filter((o) => o.status === 'dead-lettered').map((o) => o.id)).toEqual([]);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(20);
  });

  it('keeps back-pressure when every task has the same key: parked tasks count against the inbox bound', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          concurrency: 2,
          orderByKey: true,
          mailbox: { capacity: 10 },
          handle: async (x: number, _ctx) => {
            await sleep(clock, 100);
            return x;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    let accepted = 0;
    const sender = (async () => {
      for (let i = 0; i < 1000; i++) {
        await pipe.send(i, { key: 'hot' });
        accepted++;
      }
    })();
    await settle(20);
    await clock.advance(250);
    await settle(20);
    expect(accepted).toBeLessThanOrEqual(20);
    expect(pipe.stats().stages[0]!.inbox).toBeLessThanOrEqual(12);
    // And it all still goes through, in order.
    for (let t = 0; t < 2_000 && accepted < 1000; t++) await clock.advance(100);
    await sender;
    await drainOn(clock, pipe);
    expect(outcomes.map((o) => o.output)).toEqual(range(1000));
  });
});
