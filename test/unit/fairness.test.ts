import { describe, expect, it } from 'vitest';
import { agent, isBatonError, memoryJournal, createSystem, simulatedClock } from '../../system/index.js';
import { drainOn, testSystem } from '../support/helpers.js';

/** One stage with `concurrency`, `perKeyConcurrency`; each run takes 10 ms; records starts and peaks per key. */
function tenants(options: { concurrency: number; perKeyConcurrency?: number; orderByKey?: boolean; journaled?: boolean }) {
  const clock = simulatedClock();
  const system = createSystem({ logger: false, clock, random: 1, ...(options.journaled ? { journal: memoryJournal() } : {}) });
  const started: string[] = [];
  const running = new Map<string, number>();
  const peak = new Map<string, number>();
  const pipe = system.spawnPipeline<{ t: string; n: number }, string>({
    name: 'p',
    stages: [agent({
      name: 'llm',
      concurrency: options.concurrency,
      ...(options.perKeyConcurrency ? { perKeyConcurrency: options.perKeyConcurrency } : {}),
      ...(options.orderByKey ? { orderByKey: true } : {}),
      mailbox: { capacity: 2_000 },
      handle: async (x: { t: string; n: number }) => {
        started.push(`${x.t}${x.n}`);
        running.set(x.t, (running.get(x.t) ?? 0) + 1);
        peak.set(x.t, Math.max(peak.get(x.t) ?? 0, running.get(x.t)!));
        await new Promise<void>((r) => clock.setTimer(10, r));
        running.set(x.t, running.get(x.t)! - 1);
        return x.t;
      },
    })],
  });
  return { system, clock, pipe, started, peak };
}

describe('perKeyConcurrency', () => {
  it("lets a tenant's 10 tasks through while another tenant's 1,000 wait, instead of behind them", async () => {
    const { pipe, clock, started } = tenants({ concurrency: 4, perKeyConcurrency: 2 });
    for (let n = 0; n < 1_000; n++) await pipe.send({ t: 'big', n }, { key: 'big' });
    for (let n = 0; n < 10; n++) await pipe.send({ t: 'small', n }, { key: 'small' });
    await drainOn(clock, pipe, 3_600_000, 10);
    const lastSmall = started.lastIndexOf('small9');
    // Two at a time each, in turn: the small tenant's 10 start within the first ~20 starts, not after 1,000.
    expect(lastSmall).toBeLessThan(25);
    expect(started).toHaveLength(1_010);
  });

  it('never has more than perKeyConcurrency tasks of one key running', async () => {
    const { pipe, clock, peak } = tenants({ concurrency: 8, perKeyConcurrency: 2 });
    for (let n = 0; n < 50; n++) for (const t of ['a', 'b', 'c']) await pipe.send({ t, n }, { key: t });
    await drainOn(clock, pipe, 3_600_000, 10);
    expect(Object.fromEntries(peak)).toEqual({ a: 2, b: 2, c: 2 });
  });

  it('without it, the first come are the first served (the big tenant blocks the small one)', async () => {
    const { pipe, clock, started } = tenants({ concurrency: 4 });
    for (let n = 0; n < 200; n++) await pipe.send({ t: 'big', n }, { key: 'big' });
    for (let n = 0; n < 10; n++) await pipe.send({ t: 'small', n }, { key: 'small' });
    await drainOn(clock, pipe, 3_600_000, 10);
    expect(started.indexOf('small0')).toBeGreaterThanOrEqual(200);
  });

  it('keeps per-key order with orderByKey (one at a time per key, in turn between keys)', async () => {
    const { pipe, clock, started, peak } = tenants({ concurrency: 4, perKeyConcurrency: 3, orderByKey: true });
    for (let n = 0; n < 20; n++) for (const t of ['a', 'b']) await pipe.send({ t, n }, { key: t });
    await drainOn(clock, pipe, 3_600_000, 10);
    for (const t of ['a', 'b']) expect(started.filter((s) => s.startsWith(t))).toEqual(Array.from({ length: 20 }, (_, n) => `${t}${n}`));
    expect(Object.fromEntries(peak)).toEqual({ a: 1, b: 1 });
  });

  it('works on a journaled stage too, and refuses a bad value with ERR_INVALID_OPTION', async () => {
    const { pipe, clock, started } = tenants({ concurrency: 2, perKeyConcurrency: 1, journaled: true });
    for (let n = 0; n < 100; n++) await pipe.send({ t: 'big', n }, { key: 'big' });
    await pipe.send({ t: 'small', n: 0 }, { key: 'small' });
    await drainOn(clock, pipe, 3_600_000, 10);
    expect(started.indexOf('small0')).toBeLessThan(10);
    const { system } = testSystem();
    try {
      system.spawnPipeline({ name: 'x', stages: [agent({ name: 'a', handle: (x: number) => x, perKeyConcurrency: 0 })] });
      expect.unreachable();
    } catch (err) {
      expect(isBatonError(err) && err.code).toBe('ERR_INVALID_OPTION');
    }
  });
});
