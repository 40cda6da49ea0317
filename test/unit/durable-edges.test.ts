import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, simulatedClock, type Agent, type Journal, type JournalOp } from '../../system/index.js';
import { collect, settle } from '../support/helpers.js';

// Edge cases of the durable path found by a review (each test failed before its fix).

/** One "process" over a shared journal: its own system and simulated clock. */
function proc(journal: Journal, stages: Agent[]) {
  const clock = simulatedClock();
  const system = createSystem({ logger: false, clock, journal });
  const pipe = system.spawnPipeline<unknown, unknown>({ name: 'p', stages });
  return { clock, system, pipe, outcomes: collect(pipe) };
}

const never = <T>() => new Promise<T>(() => undefined);

describe('task ids', () => {
  it("refuses a user id of the form '<pipeline>-<number>', which a task sent without an id may get", async () => {
    const { pipe } = proc(memoryJournal(), [agent({ name: 'a', handle: (x: number) => x })]);
    const refused = await pipe.send(1, { id: 'p-2' }).catch((e: unknown) => e);
    expect(isBatonError(refused, 'ERR_INVALID_OPTION')).toBe(true);
    expect((refused as Error).message).toContain("'p-<number>'");
    // Ids that only look alike are fine.
    expect(await pipe.send(2, { id: 'p-2a' })).toBe('accepted');
    expect(await pipe.send(3, { id: 'q-2' })).toBe('accepted');
    expect(await pipe.send(4)).toBe('accepted');
  });
});

describe('a suspect that ran alone', () => {
  it('is not charged ERR_PROCESS_DIED when the process dies while it only waits for its retry', async () => {
    const journal = memoryJournal();
    const retry = { maxAttempts: 2, backoff: { minMs: 60_000, maxMs: 60_000 } };
    // Process 1 dies with X running.
    const p1 = proc(journal, [agent({ name: 'a', retry, handle: (_x: number) => never<number>() })]);
    await p1.pipe.send(1, { id: 'X' });
    await settle();
    // Process 2: X is a suspect, runs alone, fails once (attempt 1 of 2) and waits 60 s; the process dies then.
    proc(journal, [agent({ name: 'a', retry, breaker: false, handle: (_x: number) => { throw new Error('flaky'); } })]);
    await settle(10);
    expect(journal.openPipeline('p').task('X')).toMatchObject({ attempts: 1 });
    // Process 3: the handler works. X was not running when process 2 died.
    const p3 = proc(journal, [agent({ name: 'a', retry, handle: (x: number) => x })]);
    await settle(10);
    await p3.clock.advance(120_000);
    await settle(10);
    expect(p3.outcomes.map((o) => [o.status, o.error?.code])).toEqual([['completed', undefined]]);
  });
});

describe('a dead letter read back from the journal', () => {
  it('names the error that ended the task, as the live outcome does, when that was not a failed run', async () => {
    let n = 0;
    const router = agent({
      name: 'a',
      retry: { maxAttempts: 3, backoff: { minMs: 0, maxMs: 0 } },
      breaker: false,
      handle: (x: string) => {
        if (n++ === 0) throw new Error('flaky once');
        return x;
      },
      route: (x: string) => x,
    });
    const p = proc(memoryJournal(), [router, agent({ name: 'b', handle: (x: string) => x })]);
    await p.pipe.send('nowhere', { id: 'T' });
    await settle(10);
    const live = p.outcomes[0]!;
    const stored = p.pipe.outcome('T')!;
    expect(live.error).toMatchObject({ code: 'ERR_UNKNOWN_ADDRESS', message: expect.stringContaining("'nowhere'") });
    expect(stored.error).toEqual(live.error);
    expect(stored.errors).toEqual(live.errors);
    // The history: the failed run, then what ended the task (not charged: no run failed).
    expect(live.errors.map((e) => [e.error.message.slice(0, 10), e.charged])).toEqual([
      ['flaky once', true],
      [live.error!.message.slice(0, 10), false],
    ]);
  });
});

describe('a journal that fails to commit', () => {
  it('fails the pipeline with ERR_PIPELINE_FAILED and runs nothing it did not record', async () => {
    const inner = memoryJournal();
    let failNext = false;
    const journal: Journal = {
      ...inner,
      now: () => inner.now(),
      pipelines: () => inner.pipelines(),
      close: () => inner.close(),
      openPipeline(name) {
        const pj = inner.openPipeline(name);
        return new Proxy(pj, {
          get(target, key) {
            if (key === 'commit') {
              return (ops: readonly JournalOp[]) => {
                if (failNext) {
                  failNext = false;
                  throw new Error('disk I/O error');
                }
                return target.commit(ops);
              };
            }
            const v = (target as unknown as Record<string | symbol, unknown>)[key];
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        });
      },
    };
    let runs = 0;
    const p = proc(journal, [agent({ name: 'a', handle: (x: number) => (runs++, x) }), agent({ name: 'b', handle: (x: number) => x })]);
    await p.pipe.send(1);
    await settle(10);
    failNext = true;
    const sent = p.pipe.send(2).catch((e: unknown) => e);
    await settle(10);
    const err = await sent;
    expect(isBatonError(err, 'ERR_PIPELINE_FAILED')).toBe(true);
    expect((err as Error).message).toContain('disk I/O error');
    expect(p.pipe.stats().status).toBe('failed');
    expect(p.pipe.stats().stages.map((s) => s.status)).toEqual(['terminated', 'terminated']);
    expect(inner.openPipeline('p').counts()).toEqual({ pending: 0, completed: 1, dead: 0 });
    expect(runs).toBe(1);
  });
});

describe("the breaker's hold across a restart", () => {
  // A dependency that is down: every call fails fresh, so the breaker (threshold 2) opens. The
  // process then dies during the outage; the next one starts on the same journal.
  const down = (calls: number[], clock: { now(): number }) =>
    agent({
      name: 'a',
      concurrency: 4,
      breaker: { threshold: 2, backoff: { minMs: 30_000, maxMs: 30_000, jitter: 0 } },
      handle: async (_x: number) => {
        calls.push(clock.now());
        throw new Error('dependency down');
      },
    });

  it('starts the next process with its breaker open, its first run a probe at the time that was due, not at full speed', async () => {
    let wall = 1_000_000;
    const journal = memoryJournal({ now: () => wall });
    const calls1: number[] = [];
    const first = (() => {
      const clock = simulatedClock();
      const system = createSystem({ logger: false, clock, journal });
      const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [down(calls1, clock)] });
      return { clock, system, pipe };
    })();
    for (let i = 0; i < 10; i++) await first.pipe.send(i, { id: `t${i}` });
    await settle();
    await first.clock.advance(10);
    await settle();
    expect(first.pipe.stats().stages[0]!.breaker).toBe('open');
    const before = calls1.length;
    expect(before).toBeLessThanOrEqual(4); // the runs in flight when it opened; then it holds
    // The process dies 5 s into the 30 s hold (no clean stop: its runs were in flight).
    wall += 5_000;

    const calls2: number[] = [];
    const clock2 = simulatedClock();
    const events: string[] = [];
    const second = createSystem({ logger: false, clock: clock2, journal });
    second.events.on((e) => events.push(e.type));
    const pipe2 = second.spawnPipeline<number, number>({ name: 'p', stages: [down(calls2, clock2)] });
    await settle();
    await clock2.advance(1_000);
    await settle();
    expect(pipe2.stats().stages[0]!.breaker).toBe('open');
    expect(events).toContain('breaker-opened');
    expect(calls2).toEqual([]); // held: without the journaled hold, 4 runs would start at once
    await clock2.advance(25_000); // the probe was due 25 s after the restart
    await settle();
    expect(calls2.length).toBe(1);
    expect(calls2[0]).toBeGreaterThanOrEqual(24_000);
    void second.shutdown({ drainMs: 0 });
    void first.system.shutdown({ drainMs: 0 });
  });

  it('is forgotten when the breaker closes: the next process starts closed', async () => {
    const journal = memoryJournal();
    let ok = false;
    const clock = simulatedClock();
    const system = createSystem({ logger: false, clock, journal });
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', breaker: { threshold: 1, backoff: { minMs: 1_000, maxMs: 1_000, jitter: 0 } }, handle: async (x: number) => { if (!ok) throw new Error('down'); return x; } })],
    });
    await pipe.send(1, { id: 'a' });
    await settle();
    expect(pipe.stats().stages[0]!.breaker).toBe('open');
    expect(journal.openPipeline('p').state('breaker:a')).toBeDefined();
    ok = true;
    await clock.advance(1_000);
    await settle();
    expect(pipe.stats().stages[0]!.breaker).toBe('closed');
    expect(journal.openPipeline('p').state('breaker:a')).toBeUndefined();
    await system.shutdown();
  });
});
