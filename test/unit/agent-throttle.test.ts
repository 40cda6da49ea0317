import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, rateLimited, simulatedClock, type Classifier, type RateLimitOptions } from '../../system/index.js';
import { ofType, range } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

/** One stage; `refuse(call, now)` decides per call whether the server refuses it (and with what). */
function stage(options: { rateLimit?: RateLimitOptions; refuse?: (call: number, now: number) => unknown; concurrency?: number; classify?: Classifier; capacity?: number; journaled?: boolean; workMs?: number } = {}) {
  const clock = simulatedClock();
  const system = createSystem({ logger: false, clock, random: 7, ...(options.journaled ? { journal: memoryJournal() } : {}) });
  const events: import('../../system/index.js').BatonEvent[] = [];
  system.events.on((e) => events.push(e));
  const calls: { at: number; id: string }[] = [];
  const pipe = system.spawnPipeline<number, number>({
    name: 'p',
    stages: [
      agent({
        name: 'llm',
        concurrency: options.concurrency ?? 1,
        ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
        ...(options.classify ? { classify: options.classify } : {}),
        mailbox: { capacity: options.capacity ?? 1_000 },
        handle: async (x: number, ctx) => {
          const call = calls.length;
          calls.push({ at: clock.now(), id: ctx.taskId });
          if (options.workMs) await new Promise<void>((r) => clock.setTimer(options.workMs!, r));
          const refusal = options.refuse?.(call, clock.now());
          if (refusal !== undefined) throw refusal;
          return x;
        },
      }),
    ],
  });
  return { system, clock, pipe, calls, events, outcomes: collect(pipe) };
}

describe('an agent with a rate limit', () => {
  it('calls its handler at most burst + rate x elapsed times, and completes every task', async () => {
    const { pipe, clock, calls, outcomes } = stage({ rateLimit: { perSecond: 10, burst: 2 } });
    await pipe.sendMany(range(40));
    await drainOn(clock, pipe, 60_000, 10);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(40);
    for (const c of calls) {
      const upTo = calls.filter((d) => d.at <= c.at).length;
      expect(upTo, `calls by ${c.at} ms`).toBeLessThanOrEqual(2 + Math.floor(c.at / 100) + 1);
    }
    expect(calls.at(-1)!.at, '40 calls at 10/s with a burst of 2 take about 3.8 s').toBeGreaterThanOrEqual(3_700);
  });

  it('stays within 2% of { perMinute: 600 } over a simulated minute of an always-busy stage', async () => {
    const { pipe, clock, calls } = stage({ rateLimit: { perMinute: 600 }, concurrency: 8 });
    await pipe.sendMany(range(800));
    for (let t = 0; t < 60_000; t += 25) {
      await settle(2);
      await clock.advance(25);
    }
    const inMinute = calls.filter((c) => c.at < 60_000).length;
    expect(inMinute).toBeGreaterThanOrEqual(600 * 0.98);
    expect(inMinute).toBeLessThanOrEqual(600 + 10); // the rate plus one burst (10 = a second's worth)
  });

  it('waits for its limit with tasks in the inbox, not in memory outside it: senders wait on a full inbox', async () => {
    const { pipe, clock, calls } = stage({ rateLimit: { perSecond: 5, burst: 1 }, capacity: 4 });
    let accepted = 0;
    const sending = (async () => {
      for (const x of range(20)) if ((await pipe.send(x)) === 'accepted') accepted++;
    })();
    await settle();
    expect(pipe.stats().stages[0]!.queued).toBeLessThanOrEqual(4);
    expect(accepted).toBeLessThan(20);
    await drainOn(clock, pipe, 60_000, 20);
    await sending;
    expect(accepted).toBe(20);
    expect(calls).toHaveLength(20);
  });

  it('keeps its limit on a journaled stage too', async () => {
    const { pipe, clock, calls, outcomes } = stage({ rateLimit: { perSecond: 20, burst: 1 }, journaled: true });
    await pipe.sendMany(range(30));
    await drainOn(clock, pipe, 60_000, 10);
    expect(outcomes).toHaveLength(30);
    expect(calls.at(-1)!.at).toBeGreaterThanOrEqual(29 * 50 - 50);
  });

  it('refuses a bad rateLimit with ERR_INVALID_OPTION naming it', () => {
    const system = createSystem({ logger: false });
    const bad = (rateLimit: unknown) => {
      try {
        system.spawnPipeline({ name: `p${Math.random()}`.replace('.', ''), stages: [agent({ name: 'a', handle: (x: number) => x, rateLimit: rateLimit as RateLimitOptions })] });
      } catch (err) {
        return isBatonError(err) ? `${err.code} ${err.message}` : 'other';
      }
      return 'accepted';
    };
    expect(bad({})).toMatch(/ERR_INVALID_OPTION .*rateLimit/);
    expect(bad({ perSecond: 1, perMinute: 60 })).toMatch(/exactly one of perSecond and perMinute/);
    expect(bad({ perSecond: -1 })).toMatch(/rateLimit.perSecond/);
    expect(bad({ perSecond: 1, burst: 0.5 })).toMatch(/rateLimit.burst/);
    expect(bad({ perSecnd: 1 })).toMatch(/did you mean 'perSecond'/);
    expect(() => agent({ name: 'a', handle: (x: number) => x, classify: 'terminal' as never })).not.toThrow(); // checked at spawn, with the pipeline's defaults
    expect(() => system.spawnPipeline({ name: 'q', stages: [agent({ name: 'a', handle: (x: number) => x, classify: 'terminal' as never })] })).toThrow(/classify must be a function/);
  });
});

describe('a rate-limit refusal (HTTP 429, rateLimited())', () => {
  it("holds the whole inbox for the server's Retry-After, charges no attempt, then lets one call test the server first", async () => {
    const { pipe, clock, calls, events, outcomes } = stage({ refuse: (call) => (call === 0 ? rateLimited({ retryAfterMs: 1_000 }) : undefined) });
    await pipe.sendMany(range(5));
    await settle();
    expect(calls).toHaveLength(1);
    expect(pipe.stats().stages[0]).toMatchObject({ throttle: 'held', throttledUntil: 1_000, deadLettered: 0 });
    expect(ofType(events, 'throttled')).toMatchObject([{ path: 'p/llm', until: 1_000, retryAfterMs: 1_000, refusals: 1 }]);
    await clock.advance(999);
    await settle();
    expect(calls, 'nothing runs during the hold').toHaveLength(1);
    await clock.advance(1);
    await drainOn(clock, pipe, 10_000, 10);
    expect(calls.map((c) => c.at)).toEqual([0, 1_000, 1_000, 1_000, 1_000, 1_000]);
    expect(calls[1]!.id, 'the refused task goes first after the hold').toBe(calls[0]!.id);
    expect(outcomes.every((o) => o.status === 'completed' && o.attempts === 1)).toBe(true);
    expect(outcomes.find((o) => o.id === calls[0]!.id)!.errors).toMatchObject([{ charged: false, error: { code: 'ERR_RATE_LIMITED' } }]);
    expect(ofType(events, 'throttle-lifted')).toMatchObject([{ path: 'p/llm', heldMs: 1_000 }]);
    expect(pipe.stats().stages[0]!.throttle).toBe('open');
  });

  it('sends one call per hold to a server that keeps refusing, however many runs the stage may have in flight', async () => {
    const refused: number[] = [];
    const { pipe, clock, calls, outcomes } = stage({
      concurrency: 4,
      refuse: (call, now) => (now < 3_000 ? (refused.push(call), rateLimited({ retryAfterMs: 1_000 })) : undefined),
    });
    await pipe.sendMany(range(20));
    await drainOn(clock, pipe, 60_000, 10);
    // Four calls were under way when the first refusal came; after that, one call per hold (at 1 s,
    // then after a longer hold: 2 s ±20%, so maybe one more before 3 s), never two at once.
    const atZero = calls.filter((c) => c.at === 0).length;
    expect(atZero).toBe(4);
    const later = calls.filter((c) => c.at > 0 && c.at < 3_000).map((c) => c.at);
    expect(later.length).toBeGreaterThanOrEqual(1);
    expect(later.length).toBeLessThanOrEqual(2);
    expect(new Set(later).size, 'one call per hold').toBe(later.length);
    expect(refused.length).toBe(atZero + later.length);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(20);
  });

  it('reads a 429 with a Retry-After header from an HTTP client error, by default', async () => {
    const httpError = Object.assign(new Error('Too Many Requests'), { status: 429, headers: { 'retry-after': '2' } });
    const { pipe, clock, calls } = stage({ refuse: (call) => (call === 0 ? httpError : undefined) });
    await pipe.sendMany(range(2));
    await drainOn(clock, pipe, 10_000, 10);
    expect(calls.map((c) => c.at)).toEqual([0, 2_000, 2_000]);
  });

  it('re-holds when the call after the hold is refused again, backing off when the server names no delay', async () => {
    const { pipe, clock, calls, events, outcomes } = stage({ refuse: (call) => (call < 4 ? Object.assign(new Error('slow down'), { status: 429 }) : undefined) });
    await pipe.sendMany(range(3));
    await drainOn(clock, pipe, 120_000, 50);
    const holds = ofType(events, 'throttled').map((e) => e.retryAfterMs);
    expect(holds).toHaveLength(4);
    // 1 s, 2 s, 4 s, 8 s, each +-20%.
    holds.forEach((ms, i) => {
      expect(ms).toBeGreaterThanOrEqual(1_000 * 2 ** i * 0.8);
      expect(ms).toBeLessThanOrEqual(1_000 * 2 ** i * 1.2);
    });
    expect(calls, 'one call per hold, then the three tasks').toHaveLength(4 + 3);
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
  });

  it('survives a storm: half the calls refused for 5 s with Retry-After 1 s dead-letters nothing, charges nothing, and calls at most 1.2x the tasks', async () => {
    const { pipe, clock, calls, outcomes } = stage({
      concurrency: 4,
      workMs: 50,
      refuse: (call, now) => (now < 5_000 && call % 2 === 0 ? Object.assign(new Error('429'), { status: 429, headers: new Headers({ 'Retry-After': '1' }) }) : undefined),
    });
    await pipe.sendMany(range(100));
    await drainOn(clock, pipe, 120_000, 10);
    expect(outcomes).toHaveLength(100);
    expect(outcomes.filter((o) => o.status !== 'completed')).toEqual([]);
    expect(outcomes.every((o) => o.attempts === 1)).toBe(true);
    expect(calls.length / 100).toBeLessThanOrEqual(1.2);
  });
});

describe('error classes', () => {
  it('dead-letters a terminal error (HTTP 400) at once, without retries', async () => {
    const { pipe, clock, calls, outcomes } = stage({ refuse: (call) => (call === 0 ? Object.assign(new Error('bad request'), { status: 400 }) : undefined) });
    await pipe.sendMany(range(2));
    await drainOn(clock, pipe, 10_000, 10);
    expect(calls).toHaveLength(2);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered');
    expect(dead).toMatchObject([{ attempts: 1, error: { code: 'ERR_TASK_FAILED', message: 'bad request' } }]);
  });

  it("opens the breaker at the first failure an agent's classify calls an outage", async () => {
    const { pipe, events } = stage({ classify: (e) => ((e as Error).message === 'db down' ? 'outage' : undefined), refuse: () => new Error('db down') });
    await pipe.sendMany(range(3));
    await settle();
    expect(ofType(events, 'breaker-opened')).toHaveLength(1);
    expect(pipe.stats().stages[0]).toMatchObject({ breaker: 'open', deadLettered: 0, failed: 1 });
  });

  it('falls back to the default rules when classify throws or answers nonsense', async () => {
    let n = 0;
    const classify: Classifier = () => {
      if (n++ % 2 === 0) throw new Error('classifier bug');
      return 'sometimes' as never;
    };
    const { pipe, clock, outcomes } = stage({ classify, refuse: (call) => (call < 2 ? Object.assign(new Error('bad'), { status: 404 }) : undefined) });
    await pipe.sendMany(range(3));
    await drainOn(clock, pipe, 10_000, 10);
    expect(outcomes.filter((o) => o.status === 'dead-lettered')).toHaveLength(2);
  });

  it('lets classify mark a failure transient that the defaults call terminal', async () => {
    const { pipe, clock, outcomes, calls } = stage({ classify: () => 'transient', refuse: (call) => (call === 0 ? Object.assign(new Error('not yet'), { status: 404 }) : undefined) });
    await pipe.send(1);
    await drainOn(clock, pipe, 10_000, 10);
    expect(calls).toHaveLength(2);
    expect(outcomes).toMatchObject([{ status: 'completed', attempts: 2 }]);
  });
});

it('a pipeline without limits runs as before: no throttle, stats say open', async () => {
  const { system, pipe } = (() => {
    const t = testSystem();
    return { ...t, pipe: t.system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] }) };
  })();
  await pipe.sendMany(range(3));
  await pipe.drain();
  expect(pipe.stats().stages[0]).toMatchObject({ throttle: 'open', throttledUntil: undefined, completed: 3 });
  await system.shutdown();
});
