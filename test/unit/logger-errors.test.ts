import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { agent, createSystem } from '../../system/index.js';
import { drainOn } from '../support/helpers.js';
import { simulatedClock } from '../../system/index.js';

// Issue 12, item 2: a logger that throws must not end the process; log failures are contained like
// listener failures.
describe('a logger that throws', () => {
  it.each([
    ['a pino logger whose error serializer expects .stack (the crashed event carries an ErrorInfo, which has none)', () => pino({ serializers: { error: (e: { stack: string }) => ({ s: e.stack.length }) } }, { write: () => undefined })],
    ['a logger whose every method throws', () => {
      const boom = () => {
        throw new Error('logger broke');
      };
      const logger: Record<string, unknown> = { info: boom, warn: boom, error: boom, debug: boom, trace: boom, fatal: boom, isLevelEnabled: () => true };
      logger['child'] = () => logger;
      return logger as never;
    }],
  ])('%s: tasks still complete or dead-letter, and the process lives', async (_what, make) => {
    const clock = simulatedClock();
    const system = createSystem({ logger: make(), clock, random: 1 });
    // A failing task makes the runtime log (crashed, retried, dead-lettered), with err: a non-Error here.
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => { if (x === 2) throw 'not an Error'; return x; }, retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 1 } } })] });
    const outcomes: string[] = [];
    pipe.onOutcome((o) => outcomes.push(`${o.id} ${o.status}`));
    await pipe.sendMany([1, 2, 3]);
    await drainOn(clock, pipe);
    expect(outcomes.sort()).toEqual(['p-1 completed', 'p-2 dead-lettered', 'p-3 completed']);
    await system.shutdown();
  });
});
