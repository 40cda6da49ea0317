import { describe, expect, it } from 'vitest';
import { agent, BatonError } from '../../system/index.js';
import { fixed, gate, ofType, range, sleep } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

describe('a failed task', () => {
  it('is retried on a fresh state from init, with the next attempt number and the same task id', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    const runs: { attempt: number; taskId: string; state: { gen: number } }[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          init: () => ({ gen: ++inits }),
          handle: (x: number, ctx) => {
            runs.push({ attempt: ctx.attempt, taskId: ctx.taskId, state: ctx.state });
            if (ctx.attempt < 3) throw new Error(`not yet ${ctx.attempt}`);
            return x * 2;
          },
          retry: { backoff: fixed(10) },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(21, { id: 'job' });
    await drainOn(clock, pipe);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(runs.map((r) => r.taskId)).toEqual(['job', 'job', 'job']);
    expect(runs.map((r) => r.state.gen)).toEqual([1, 2, 3]);
    expect(new Set(runs.map((r) => r.state)).size, 'each retry saw a new state object').toBe(3);
    expect(inits).toBe(3);
    expect(outcomes).toMatchObject([{ id: 'job', status: 'completed', output: 42, attempts: 3, stage: 'a' }]);
    expect(outcomes[0]!.errors.map((e) => [e.stage, e.attempt, e.charged, e.error.message])).toEqual([
      ['a', 1, true, 'not yet 1'],
      ['a', 2, true, 'not yet 2'],
    ]);
  });

  it('keeps one state object across failures when keepState is set, and init runs once', async () => {
    const { system, clock } = testSystem();
    let inits = 0;
    const states = new Set<object>();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          keepState: true,
          init: () => ({ runs: 0, gen: ++inits }),
          handle: (x: number, ctx) => {
            states.add(ctx.state);
            ctx.state.runs++;
            if (ctx.attempt < 3) throw new Error('again');
            return ctx.state.runs;
          },
          retry: { backoff: fixed(5) },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(inits).toBe(1);
    expect(states.size).toBe(1);
    expect(outcomes[0]).toMatchObject({ status: 'completed', output: 3 });
  });

  it('waits about 100 ms, then about 200 ms, by default and is dead-lettered after the third attempt', async () => {
    const { system, clock, events } = testSystem(7);
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'parse', handle: (x: number) => { throw new Error(`corrupt ${x}`); } })],
    });
    const outcomes = collect(pipe);
    await pipe.send(5, { id: 'doc' });
    await drainOn(clock, pipe, 60_000, 5);
    expect(outcomes).toHaveLength(1);
    const dead = outcomes[0]!;
    expect(dead).toMatchObject({ status: 'dead-lettered', stage: 'parse', attempts: 3, error: { code: 'ERR_TASK_FAILED', message: 'corrupt 5' } });
    expect(dead.errors.map((e) => [e.stage, e.attempt, e.charged])).toEqual([['parse', 1, true], ['parse', 2, true], ['parse', 3, true]]);
    const [t1, t2, t3] = dead.errors.map((e) => e.at);
    expect(t2! - t1!).toBeGreaterThanOrEqual(80);
    expect(t2! - t1!).toBeLessThanOrEqual(120);
    expect(t3! - t2!).toBeGreaterThanOrEqual(160);
    expect(t3! - t2!).toBeLessThanOrEqual(240);
    const retried = ofType(events, 'retried');
    expect(retried.map((e) => [e.taskId, e.attempt])).toEqual([['doc', 2], ['doc', 3]]);
    expect(retried[0]!.delayMs).toBeCloseTo(t2! - t1!, 6);
    expect(ofType(events, 'dead-lettered')).toMatchObject([{ path: 'p/parse', taskId: 'doc', error: { code: 'ERR_TASK_FAILED' } }]);
    expect(ofType(events, 'crashed').map((e) => e.taskId)).toEqual(['doc', 'doc', 'doc']);
  });

  it('never waits longer than the backoff maxMs between attempts', async () => {
    const { system, clock, events } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: () => { throw new Error('no'); }, retry: { maxAttempts: 9, backoff: { minMs: 100, maxMs: 500 } } })],
    });
    await pipe.send(1);
    await drainOn(clock, pipe);
    const delays = ofType(events, 'retried').map((e) => e.delayMs);
    expect(delays).toHaveLength(8);
    expect(Math.max(...delays)).toBeLessThanOrEqual(500);
    expect(Math.min(...delays.slice(4))).toBeGreaterThanOrEqual(400);
  });

  it.each([['a string'], [42], [undefined], [null], [{ reason: 'quota' }]])('is dead-lettered with a readable message when the handler throws or rejects with %j', async (value) => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<string, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          retry: { maxAttempts: 2, backoff: fixed(1) },
          handle: (how: string) => {
            if (how === 'reject') return Promise.reject(value);
            throw value;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.send('throw', { id: 'sync' });
    await pipe.send('reject', { id: 'async' });
    await drainOn(clock, pipe);
    for (const id of ['sync', 'async']) {
      const o = outcomes.find((x) => x.id === id)!;
      expect(o).toMatchObject({ status: 'dead-lettered', attempts: 2, error: { code: 'ERR_TASK_FAILED', message: expect.stringContaining('non-Error value thrown') } });
      expect(o.errors).toHaveLength(2);
    }
  });

  it('is reported as ERR_TASK_FAILED while each attempt keeps the code of the error it threw', async () => {
    const { system, clock } = testSystem();
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: () => { throw refused; }, retry: { maxAttempts: 2, backoff: fixed(1) } })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(outcomes[0]!.error!.code).toBe('ERR_TASK_FAILED');
    expect(outcomes[0]!.errors.map((e) => e.error.code)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
  });

  it('is reported as ERR_TASK_FAILED even when the handler rethrows a BatonError from elsewhere', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: () => { throw new BatonError('ERR_STOPPED', 'another pipeline is stopped'); }, retry: { maxAttempts: 1 } })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(outcomes[0]).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_TASK_FAILED', message: 'another pipeline is stopped' } });
  });

  it('is dead-lettered after a single run when maxAttempts is 1, with no retried event', async () => {
    const { system, clock, events } = testSystem();
    let runs = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: () => { runs++; throw new Error('once'); }, retry: { maxAttempts: 1 } })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(runs).toBe(1);
    expect(outcomes).toMatchObject([{ status: 'dead-lettered', attempts: 1 }]);
    expect(ofType(events, 'retried')).toHaveLength(0);
  });

  it('does not hold up the tasks behind it while it waits out its backoff', async () => {
    const { system, clock } = testSystem();
    const finished: string[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          retry: { backoff: fixed(1_000) },
          handle: async (x: number, ctx) => {
            await sleep(clock, 10);
            if (x === 0 && ctx.attempt === 1) throw new Error('later');
            finished.push(`${x}@${clock.now()}`);
            return x;
          },
        }),
      ],
    });
    await pipe.sendMany(range(5));
    await settle();
    await clock.advance(100);
    expect(finished).toEqual(['1@20', '2@30', '3@40', '4@50']);
    await drainOn(clock, pipe);
    expect(finished[4]).toBe('0@1020');
  });

  it('starts again at attempt 1 at the next stage, and its history spans both stages', async () => {
    const { system, clock } = testSystem();
    const attempts: string[] = [];
    const failOnce = (name: string) =>
      agent({
        name,
        retry: { backoff: fixed(5) },
        handle: (x: number, ctx) => {
          attempts.push(`${name}${ctx.attempt}`);
          if (ctx.attempt === 1) throw new Error(`${name} hiccup`);
          return x + 1;
        },
      });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [failOnce('a'), failOnce('b')] });
    const outcomes = collect(pipe);
    await pipe.send(0);
    await drainOn(clock, pipe);
    expect(attempts).toEqual(['a1', 'a2', 'b1', 'b2']);
    expect(outcomes[0]).toMatchObject({ status: 'completed', output: 2, stage: 'b', attempts: 2 });
    expect(outcomes[0]!.errors.map((e) => `${e.stage}${e.attempt}: ${e.error.message}`)).toEqual(['a1: a hiccup', 'b1: b hiccup']);
  });

  it('waits for an async init to finish before it is retried', async () => {
    const { system, clock } = testSystem();
    const ready = [gate(), gate()];
    let inits = 0;
    const seen: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          retry: { backoff: fixed(1) },
          init: async () => {
            const gen = inits++;
            if (gen > 0) await ready[gen - 1]!.opened;
            return { gen };
          },
          handle: (x: number, ctx) => {
            seen.push(ctx.state.gen);
            if (ctx.attempt === 1) throw new Error('reconnect');
            return x;
          },
        }),
      ],
    });
    await pipe.send(1);
    await settle();
    await clock.advance(50);
    expect(seen).toEqual([0]);
    expect(inits).toBe(2);
    ready[0]!.open();
    await drainOn(clock, pipe);
    expect(seen).toEqual([0, 1]);
  });

  it('follows its own stage retry options over the pipeline defaults', async () => {
    const { system, clock } = testSystem();
    const fail = () => { throw new Error('x'); };
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      defaults: { retry: { maxAttempts: 4, backoff: fixed(1) } },
      stages: [agent({ name: 'a', handle: (x: number) => (x === 1 ? fail() : x) }), agent({ name: 'b', handle: fail, retry: { maxAttempts: 2 } })],
    });
    const outcomes = collect(pipe);
    await pipe.send(1, { id: 'at-a' });
    await pipe.send(2, { id: 'at-b' });
    await drainOn(clock, pipe);
    expect(outcomes.find((o) => o.id === 'at-a')).toMatchObject({ status: 'dead-lettered', stage: 'a', attempts: 4 });
    expect(outcomes.find((o) => o.id === 'at-b')).toMatchObject({ status: 'dead-lettered', stage: 'b', attempts: 2 });
  });
});
