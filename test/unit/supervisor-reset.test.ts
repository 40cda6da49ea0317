import { describe, expect, it } from 'vitest';
import { actor, createSystem, oneForOne, simulatedClock } from '../../system/index.js';
import { settle } from '../support/helpers.js';

// Issue 12, item 19: the backoff's quiet period (resetAfterMs) was measured from the previous failure
// instead of the last restart, so a child that crashes right after each restart cycled 1, 2, ..., 32 s,
// then 1 s again, and never reached the cap. Measured from the restart (as documented, and as Pekko does).
describe("a supervisor's restart backoff", () => {
  it('keeps growing to its cap for a child that crashes right after every restart', async () => {
    const clock = simulatedClock();
    const system = createSystem({ logger: false, clock, random: 1 });
    const restartsAt: number[] = [];
    system.events.on('restarted', (e) => restartsAt.push(e.at));
    system.spawnSupervisor({
      name: 'sup',
      strategy: oneForOne({ maxRestarts: 100, withinMs: 36_000_000, backoff: { minMs: 1_000, maxMs: 32_000, factor: 2, jitter: 0 }, resetAfterMs: 30_000 }),
      children: [{ name: 'a', actor: actor({ init: () => { throw new Error('cannot start'); }, receive: () => undefined }) }],
    });
    for (let i = 0; i < 10; i++) {
      await clock.advance(32_000);
      await settle(1);
    }
    const gaps = restartsAt.slice(1).map((t, i) => t - restartsAt[i]!);
    expect(gaps.slice(0, 7)).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 32_000, 32_000]);
  });
});
