import { describe, expect, it } from 'vitest';
import { agent, type BatonError, type BatonEvent } from '../../system/index.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

const fast = { backoff: { minMs: 10, maxMs: 10, jitter: 0 } };
const count = (events: BatonEvent[], type: BatonEvent['type']) => events.filter((e) => e.type === type).length;

describe('the agent supervisor, on a task failure', () => {
  it('retries with a fresh worker state and dead-letters after maxAttempts with every attempt in the history', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    const seen: { attempt: number; state: object; id: string }[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'flaky',
          init: () => ({ n: ++inits }),
          handle: (x: number, ctx) => {
            seen.push({ attempt: ctx.attempt, state: ctx.state, id: ctx.taskId });
            throw x === 1 ? new Error('corrupt') : 'a string, not an Error';
          },
          retry: { maxAttempts: 3, ...fast },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1, { id: 'one' });
    await pipe.send(2, { id: 'two' });
    await drainOn(clock, pipe);
    expect(seen.filter((s) => s.id === 'one').map((s) => s.attempt)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((s) => s.state)).size, 'every run after a failure saw a fresh state').toBe(seen.length);
    expect(inits).toBe(7); // one at start, one after each of the 6 failures
    const one = outcomes.find((o) => o.id === 'one')!;
    expect(one).toMatchObject({ status: 'dead-lettered', stage: 'flaky', attempts: 3, error: { code: 'ERR_TASK_FAILED', message: 'corrupt' } });
    expect(one.errors.map((e) => [e.stage, e.attempt, e.charged])).toEqual([['flaky', 1, true], ['flaky', 2, true], ['flaky', 3, true]]);
    const two = outcomes.find((o) => o.id === 'two')!;
    expect(two.error!.message).toContain('non-Error value thrown');
  });

  it('keeps the worker state across failures when keepState is set', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', keepState: true, init: () => ({ n: ++inits }), handle: (x: number, ctx) => { if (ctx.attempt === 1) throw new Error('once'); return x + ctx.state.n; }, retry: fast })],
    });
    const outcomes = collect(pipe);
    await pipe.send(10);
    await drainOn(clock, pipe);
    expect(inits).toBe(1);
    expect(outcomes[0]).toMatchObject({ status: 'completed', output: 11, attempts: 2 });
  });

  it('does not let a task waiting out its backoff hold up the tasks behind it', async () => {
    const { system, clock } = testSystem();
    const order: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: (x: number, ctx) => { order.push(x); if (x === 0 && ctx.attempt === 1) throw new Error('later'); return x; }, retry: { backoff: { minMs: 1_000, jitter: 0 } } })],
    });
    for (let i = 0; i < 5; i++) await pipe.send(i);
    await settle();
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(pipe.stats().pending).toBe(1);
    await clock.advance(999);
    expect(order).toHaveLength(5);
    await clock.advance(1);
    await settle();
    expect(order).toEqual([0, 1, 2, 3, 4, 0]);
  });

  it('aborts a run at its timeout, discards its late result and reports the task once', async () => {
    const { system, clock } = testSystem();
    let release!: (v: string) => void;
    const reasons: unknown[] = [];
    const pipe = system.spawnPipeline<number, string>({
      name: 'p',
      stages: [
        agent({
          name: 'slow',
          timeoutMs: 500,
          retry: { maxAttempts: 2, ...fast },
          handle: (_x: number, ctx) => {
            ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason));
            return new Promise<string>((resolve) => (release = resolve));
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await settle();
    await clock.advance(499);
    expect(reasons).toHaveLength(0);
    await clock.advance(1);
    expect(reasons[0]).toMatchObject({ code: 'ERR_TIMEOUT' });
    const late = release;
    await clock.advance(520);
    late('too late');
    await drainOn(clock, pipe);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_TIMEOUT' }, attempts: 2 });
  });
});

describe('the agent supervisor, poison versus outage', () => {
  it('dead-letters every poison task at a 3% rate, completes the rest, and never opens the breaker or escalates', async () => {
    const { system, clock, events } = testSystem();
    const poison = (x: number) => x % 33 === 7;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'parse', handle: (x: number) => { if (poison(x)) throw new Error(`corrupt ${x}`); return x; }, retry: fast })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([...Array(1000).keys()]);
    await drainOn(clock, pipe);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered').map((o) => Number(o.error!.message.split(' ')[1]));
    expect(dead.sort((a, b) => a - b)).toEqual([...Array(1000).keys()].filter(poison));
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(1000 - dead.length);
    expect(count(events, 'breaker-opened')).toBe(0);
    expect(count(events, 'escalated')).toBe(0);
  });

  it('holds the inbox through a ten-minute outage and dead-letters nothing', async () => {
    const { system, clock, events } = testSystem();
    const downUntil = clock.now() + 10 * 60_000;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'store', handle: async (x: number) => { if (clock.now() < downUntil) throw new Error('db down'); return x; }, retry: fast })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([...Array(40).keys()]);
    await settle();
    await clock.advance(100);
    expect(pipe.stats().stages[0]!.breaker).toBe('open');
    await drainOn(clock, pipe, 3_600_000, 1_000);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(40);
    expect(outcomes.every((o) => o.errors.filter((e) => e.charged).length === 0), 'the outage cost no task an attempt').toBe(true);
    expect(count(events, 'breaker-opened')).toBeGreaterThan(3);
    expect(count(events, 'breaker-closed')).toBe(1);
    expect(count(events, 'escalated')).toBe(0);
  });

  it('dead-letters the retried poison left at the end of a batch instead of holding the breaker forever', async () => {
    const { system, clock, events } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: (x: number) => { if (x >= 96) throw new Error('poison'); return x; }, retry: fast })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([...Array(100).keys()]);
    await drainOn(clock, pipe);
    expect(outcomes.filter((o) => o.status === 'dead-lettered').map((o) => o.id).sort()).toEqual(['p-100', 'p-97', 'p-98', 'p-99']);
    expect(count(events, 'breaker-opened')).toBe(0);
  });
});

describe('the agent supervisor, restart intensity', () => {
  it('escalates an init that keeps throwing; the pipeline restarts the stage with its inbox intact', async () => {
    const { system, clock, events } = testSystem();
    let calls = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', init: () => { if (++calls <= 4) throw new Error('no connection'); return {}; }, handle: (x: number) => x, restart: { maxRestarts: 2, withinMs: 60_000, backoff: { minMs: 10, jitter: 0 } } })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2, 3]);
    await drainOn(clock, pipe);
    expect(count(events, 'escalated')).toBe(1);
    expect(outcomes.map((o) => o.output)).toEqual([1, 2, 3]);
  });

  it('aborts the signal of a run in flight with ERR_ABORTED when its stage restarts, and runs the task again uncharged', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    const signals: AbortSignal[] = [];
    const pipe = system.spawnPipeline<string, string>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          concurrency: 2,
          breaker: false,
          retry: { maxAttempts: 1 },
          // The failure of 'bad' restarts the worker, whose init then fails once: past maxRestarts 0, the
          // stage escalates with 'slow' in flight, and the pipeline restarts the stage.
          restart: { maxRestarts: 0 },
          init: () => {
            if (++inits === 2) throw new Error('init fails once');
          },
          handle: (x: string, ctx) => {
            if (x === 'bad') throw new Error('poison');
            signals.push(ctx.signal);
            return signals.length === 1 ? new Promise<string>(() => undefined) : `${x}:${ctx.attempt}`;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send('slow');
    await settle();
    await pipe.send('bad');
    await drainOn(clock, pipe);
    expect(signals[0]!.aborted).toBe(true);
    const reason = signals[0]!.reason as BatonError;
    expect([reason.name, reason.code]).toEqual(['BatonError', 'ERR_ABORTED']);
    expect(reason.message).toContain("stage 'p/a' is restarting");
    // Taken back uncharged: its second run is still attempt 1, and it completes.
    expect(outcomes.find((o) => o.status === 'completed')).toMatchObject({ output: 'slow:1', errors: [] });
  });

  it('fails the pipeline past its own intensity while another pipeline keeps running', async () => {
    const { system, clock } = testSystem();
    const broken = system.spawnPipeline<number, number>({
      name: 'broken',
      supervisor: { maxRestarts: 1, withinMs: 60_000 },
      stages: [agent({ name: 'a', init: () => { throw new Error('no connection'); }, handle: (x: number) => x, restart: { maxRestarts: 1, backoff: { minMs: 0, maxMs: 0 } } })],
    });
    const healthy = system.spawnPipeline<number, number>({ name: 'healthy', stages: [agent({ name: 'b', handle: (x: number) => x })] });
    const brokenOutcomes = collect(broken);
    await broken.send(1);
    const failure = broken.drain().catch((e: unknown) => e);
    await settle();
    await clock.advance(10);
    expect(await failure).toMatchObject({ code: 'ERR_PIPELINE_FAILED', message: expect.stringContaining("'broken/a'") });
    expect(brokenOutcomes).toMatchObject([{ status: 'dead-lettered', error: { code: 'ERR_PIPELINE_FAILED' } }]);
    await expect(broken.send(2)).rejects.toMatchObject({ code: 'ERR_STOPPED' });
    const ok = collect(healthy);
    await healthy.send(5);
    await drainOn(clock, healthy);
    expect(ok).toMatchObject([{ status: 'completed', output: 5 }]);
  });
});

describe('the agent supervisor, isolation and order', () => {
  it('never re-runs an upstream stage because a downstream stage failed', async () => {
    const { system, clock } = testSystem();
    const calls = { a: 0, b: 0, c: 0 };
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({ name: 'a', handle: (x: number) => (calls.a++, x) }),
        agent({ name: 'b', handle: (x: number) => (calls.b++, x) }),
        // Every task fails twice here; with the breaker on, that would look like an outage and hold.
        agent({ name: 'c', handle: (x: number, ctx) => { calls.c++; if (ctx.attempt < 3) throw new Error('flaky'); return x; }, retry: fast, breaker: false }),
      ],
    });
    await pipe.sendMany([...Array(10).keys()]);
    await drainOn(clock, pipe);
    expect(calls).toEqual({ a: 10, b: 10, c: 30 });
    expect(pipe.stats().stages.map((s) => s.restarts)).toEqual([0, 0, 20]);
  });

  it('runs tasks with the same key one at a time, in order, across retries, while other keys go on', async () => {
    const { system, clock } = testSystem();
    const log: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const pipe = system.spawnPipeline<{ k: string; i: number }, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          concurrency: 4,
          orderByKey: true,
          retry: { backoff: { minMs: 100, jitter: 0 } },
          handle: async (x: { k: string; i: number }, ctx) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            await new Promise((r) => clock.setTimer(1, () => r(undefined)));
            running--;
            if (x.k === 'A' && x.i === 0 && ctx.attempt === 1) throw new Error('retry me');
            log.push(`${x.k}${x.i}`);
            return x.i;
          },
        }),
      ],
    });
    for (let i = 0; i < 3; i++) for (const k of ['A', 'B', 'C']) await pipe.send({ k, i }, { key: k });
    await drainOn(clock, pipe);
    for (const k of ['A', 'B', 'C']) expect(log.filter((s) => s.startsWith(k))).toEqual([`${k}0`, `${k}1`, `${k}2`]);
    expect(log.indexOf('B2'), 'other keys did not wait for the retry of A0').toBeLessThan(log.indexOf('A0'));
    expect(maxRunning).toBeLessThanOrEqual(3);
  });
});

describe('the handler contract', () => {
  it('passes ctx to a handler that declares it, and none to a one-parameter handler (its hot path allocates nothing)', async () => {
    const { system, clock } = testSystem();
    const seen: unknown[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({ name: 'bare', handle: function (x: number) { seen.push(arguments.length); return x; } }),
        agent({ name: 'ctx', handle: (x: number, ctx) => (seen.push(ctx.taskId), x) }),
      ],
    });
    await pipe.send(1, { id: 'a' });
    await drainOn(clock, pipe);
    expect(seen).toEqual([1, 'a']);
  });
});

describe('timeouts that escalate', () => {
  it('fails each timed-out run once even when the timeouts escalate the stage mid-sweep', async () => {
    const { system, clock, events } = testSystem();
    let inits = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      supervisor: { maxRestarts: 100 },
      stages: [
        agent({
          name: 'hang',
          concurrency: 4,
          timeoutMs: 100,
          breaker: false,
          // The first timeout restarts the worker, whose init then fails once: past maxRestarts 0 the stage
          // escalates in the middle of the sweep that times out the other three runs.
          restart: { maxRestarts: 0, withinMs: 60_000 },
          init: () => {
            if (++inits === 2) throw new Error('init fails once');
          },
          retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 1, jitter: 0 } },
          handle: (x: number, ctx) => (ctx.attempt >= 2 ? x : new Promise<number>(() => undefined)),
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2, 3, 4]);
    await drainOn(clock, pipe, 60_000, 10);
    expect(outcomes.map((o) => o.output).sort()).toEqual([1, 2, 3, 4]);
    expect(events.filter((e) => e.type === 'escalated').length).toBeGreaterThanOrEqual(1);
    const crashes = events.filter((e) => e.type === 'crashed');
    expect(new Set(crashes.map((e) => `${(e as { taskId?: string }).taskId}@${e.at}`)).size, 'no run failed twice').toBe(crashes.length);
  });
});
