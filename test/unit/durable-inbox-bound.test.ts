import { describe, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal } from '../../system/index.js';
import { settle } from '../support/helpers.js';

// Issue 12, item 11: a stage with a journal held up to 2 x capacity - 1 tasks: its first batch took
// the inbox's tasks out (up to 256) before it had seen a promise, put back the ones that could not
// start into `ready`, and senders refilled the inbox behind them.
describe('a journaled stage whose handler is async', () => {
  it('never holds more tasks waiting than its inbox bound while senders keep it full', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const gates: (() => void)[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'slow', handle: (x: number) => new Promise<number>((r) => gates.push(() => r(x))), mailbox: { capacity: 4 } })],
    });
    let peak = 0;
    const sample = () => (peak = Math.max(peak, pipe.stats().stages[0]!.inbox));
    // sendMany fills the inbox (4) at once, before the stage has run its first batch.
    const sending = pipe.sendMany(Array.from({ length: 20 }, (_, i) => i));
    for (let round = 0; round < 40 && (gates.length > 0 || pipe.stats().pending > 0); round++) {
      await settle(2);
      sample();
      gates.shift()?.();
    }
    await sending;
    await pipe.drain();
    expect(pipe.stats().completed).toBe(20);
    expect(peak).toBeLessThanOrEqual(4);
    await system.shutdown();
  });
});
