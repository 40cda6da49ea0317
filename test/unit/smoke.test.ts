import { describe, expect, it } from 'vitest';
import { agent } from '../../system/index.js';
import { collect, drainOn, testSystem } from '../support/helpers.js';

describe('a linear pipeline', () => {
  it('hands each output to the next stage and completes every task once', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: (x: number) => x + 1 }), agent({ name: 'b', handle: async (x: number) => x * 10 })],
    });
    const outcomes = collect(pipe);
    for (let i = 0; i < 50; i++) await pipe.send(i, { id: `t${i}` });
    await drainOn(clock, pipe);
    expect(outcomes).toHaveLength(50);
    expect(outcomes.map((o) => o.output as number).sort((a, b) => a - b)).toEqual([...Array(50).keys()].map((i) => (i + 1) * 10));
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(50);
    expect(pipe.stats().stages.map((s) => s.completed)).toEqual([50, 50]);
    await system.shutdown();
  });
});
