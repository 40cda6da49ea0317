import { describe, expect, it } from 'vitest';
import { agent, createSystem } from '../../system/index.js';
import { Scheduler, type Runnable } from '../../src/scheduler.js';

/**
 * A runnable that, every run, settles a promise whose continuation schedules it again: an endless
 * async hop. It gives up by itself after `capMs` (`capped` is then set), so a scheduler that starves
 * the event loop fails the test below instead of hanging the whole run.
 */
function pingPong(scheduler: Scheduler, capMs = 2_000): Runnable & { runs: number; stop: boolean; capped: boolean } {
  const started = performance.now();
  const r = {
    scheduled: false,
    runs: 0,
    stop: false,
    capped: false,
    run() {
      r.runs++;
      if ((r.runs & 1023) === 0 && performance.now() - started > capMs) r.capped = r.stop = true;
      if (!r.stop) void Promise.resolve().then(() => scheduler.schedule(r));
      return 1;
    },
    hasWork: () => false,
  };
  return r;
}

describe('the scheduler', () => {
  it('starts a turn woken from a promise continuation before the next macrotask', async () => {
    const scheduler = new Scheduler();
    const order: string[] = [];
    const r: Runnable = { scheduled: false, run: () => (order.push('run'), 1), hasWork: () => false };
    // The first wake-up after idling goes through the event loop; the next, within sliceMs, does not.
    scheduler.schedule(r);
    await new Promise<void>((done) => setImmediate(done));
    setImmediate(() => order.push('immediate'));
    await Promise.resolve();
    scheduler.schedule(r);
    await new Promise<void>((done) => setImmediate(done));
    expect(order).toEqual(['run', 'run', 'immediate']);
  });

  it('still yields to timers and I/O callbacks while promise-driven turns never stop', async () => {
    const scheduler = new Scheduler({ sliceMs: 4 });
    const r = pingPong(scheduler);
    scheduler.schedule(r);
    const started = performance.now();
    let cappedAtTimer = true;
    const timer = await new Promise<number>((done) => setTimeout(() => ((cappedAtTimer = r.capped), done(performance.now() - started)), 0));
    const immediate = await new Promise<number>((done) => setImmediate(() => done(performance.now() - started)));
    r.stop = true;
    expect(cappedAtTimer, 'the timer fired while the ping-pong was still running, not after it gave up').toBe(false);
    expect(r.runs, 'the ping-pong kept running').toBeGreaterThan(100);
    expect(timer, 'a 0 ms timer fired within a few slices').toBeLessThan(200);
    expect(immediate).toBeLessThan(400);
  });

  it('keeps an async pipeline fair to a timer: a 5 ms timer fires while 20,000 tasks flow', async () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: ['a', 'b', 'c'].map((name) => agent({ name, concurrency: 8, handle: async (x: number) => x })),
    });
    let firedWhilePending = -1;
    setTimeout(() => (firedWhilePending = pipe.stats().pending), 5);
    await pipe.sendMany(Array.from({ length: 20_000 }, (_, i) => i));
    await pipe.drain();
    await system.shutdown();
    expect(firedWhilePending, 'the timer fired before the batch was done').toBeGreaterThan(0);
  });
});
