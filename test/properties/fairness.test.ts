import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agent, createSystem, simulatedClock } from '../../system/index.js';
import { checkProperty } from '../../testkit/index.js';
import { drainOn } from '../support/helpers.js';

// Issue 16, item 5: with K keys waiting, however many tasks each has and in whatever order they were
// sent, every key's first task is among the first K starts (one turn each), no key ever has more than
// perKeyConcurrency tasks running, and every task runs once.
describe('perKeyConcurrency', () => {
  it('gives every waiting key a turn within the first K starts and never exceeds the per-key limit', async () => {
    await checkProperty(
      fc.asyncProperty(
        fc.record({
          counts: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
          concurrency: fc.integer({ min: 1, max: 6 }),
          perKey: fc.integer({ min: 1, max: 3 }),
          interleave: fc.boolean(),
        }),
        async ({ counts, concurrency, perKey, interleave }) => {
          const clock = simulatedClock();
          const system = createSystem({ logger: false, clock, random: 1 });
          const starts: string[] = [];
          const running = new Map<string, number>();
          let over = 0;
          const pipe = system.spawnPipeline<{ k: string }, string>({
            name: 'p',
            stages: [agent({
              name: 's',
              concurrency,
              perKeyConcurrency: perKey,
              mailbox: { capacity: 1_000 },
              handle: async (x: { k: string }) => {
                starts.push(x.k);
                running.set(x.k, (running.get(x.k) ?? 0) + 1);
                if (running.get(x.k)! > perKey) over++;
                await new Promise<void>((r) => clock.setTimer(5, r));
                running.set(x.k, running.get(x.k)! - 1);
                return x.k;
              },
            })],
          });
          const inputs: { k: string }[] = [];
          if (interleave) for (let i = 0; i < Math.max(...counts); i++) counts.forEach((c, k) => i < c && inputs.push({ k: `k${k}` }));
          else counts.forEach((c, k) => { for (let i = 0; i < c; i++) inputs.push({ k: `k${k}` }); });
          await pipe.sendMany(inputs, { key: (x) => x.k });
          await drainOn(clock, pipe, 3_600_000, 5);
          expect(starts).toHaveLength(inputs.length);
          expect(over).toBe(0);
          const K = counts.length;
          counts.forEach((_, k) => expect(starts.indexOf(`k${k}`), `key k${k}`).toBeLessThan(K));
          await system.shutdown();
        },
      ),
      { numRuns: 80 },
    );
  }, 120_000);
});
