import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError } from '../../system/index.js';

// Issue 12, item 13: an outcomes() iterator that is never read, or read slowly, buffered without bound
// (about 190 B per outcome: 473 MB after 2M tasks).
describe('an outcomes() iterator', () => {
  it('holds at most its high-water mark of unread outcomes, dropping the oldest and counting them', async () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    const slow = pipe.outcomes({ highWaterMark: 100 });
    const fast = pipe.outcomes(); // a second iterator gets every outcome too, in its own buffer
    await pipe.sendMany(Array.from({ length: 1_000 }, (_, i) => i));
    await pipe.drain();
    expect(slow.dropped).toBe(900);
    const first = await slow.next();
    expect(first.value?.output).toBe(900); // the 100 newest were kept
    const outputs: unknown[] = [];
    for (let i = 0; i < 1_000; i++) outputs.push((await fast.next()).value?.output);
    expect(outputs).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(fast.dropped).toBe(0);
    await system.shutdown();
  });

  it('refuses a high-water mark that is not a whole number >= 1', () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle: (x: unknown) => x })] });
    let code: string | undefined;
    try {
      pipe.outcomes({ highWaterMark: 0 });
    } catch (err) {
      code = isBatonError(err) ? err.code : String(err);
    }
    expect(code).toBe('ERR_INVALID_OPTION');
  });
});
