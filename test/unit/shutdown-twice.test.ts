import { describe, expect, it } from 'vitest';
import { agent, createSystem } from '../../system/index.js';

// Issue 12, item 15: a second system.shutdown() resolved at once while the first was still draining.
describe('system.shutdown() called twice', () => {
  it('resolves the second call only when the first has finished', async () => {
    const system = createSystem({ logger: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'slow', handle: async (x: number) => (await gate, x) })] });
    await pipe.send(1);
    const order: string[] = [];
    const first = system.shutdown({ drainMs: 10_000 }).then(() => order.push('first'));
    const second = system.shutdown().then(() => order.push('second'));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]); // still draining: the task is held at the gate
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect(pipe.stats().completed).toBe(1);
  });
});
