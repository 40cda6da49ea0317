import { describe, expect, it } from 'vitest';
import { agent, type AgentPolicyOptions } from '../../system/index.js';
import { fixed, inFlightMeter, range, sleep } from '../support/agent-kit.js';
import { collect, drainOn, testSystem } from '../support/helpers.js';

interface Job {
  readonly k: string;
  readonly i: number;
}

/** One async stage that records, per key, when each run started and ended and how many overlapped. */
function keyed(policy: AgentPolicyOptions, fail: (j: Job, attempt: number) => boolean = () => false, ms = (j: Job, _attempt: number) => 10 + ((j.i * 7) % 5)) {
  const t = testSystem();
  const log: { job: string; start: number; end: number; ok: boolean }[] = [];
  const running = new Map<string, number>();
  let maxSameKey = 0;
  const all = inFlightMeter();
  const pipe = t.system.spawnPipeline<Job, string>({
    name: 'p',
    stages: [
      agent({
        name: 'a',
        ...policy,
        handle: async (j: Job, ctx) => {
          const start = t.clock.now();
          running.set(j.k, (running.get(j.k) ?? 0) + 1);
          maxSameKey = Math.max(maxSameKey, running.get(j.k)!);
          all.enter();
          await sleep(t.clock, ms(j, ctx.attempt));
          all.leave();
          running.set(j.k, running.get(j.k)! - 1);
          const ok = !fail(j, ctx.attempt);
          log.push({ job: `${j.k}${j.i}`, start, end: t.clock.now(), ok });
          if (!ok) throw new Error(`${j.k}${j.i} failed`);
          return `${j.k}${j.i}`;
        },
      }),
    ],
  });
  const send = async (keys: string[], n: number, withKey = true) => {
    for (let i = 0; i < n; i++) for (const k of keys) await pipe.send({ k, i }, withKey ? { key: k } : undefined);
  };
  return { ...t, pipe, log, send, outcomes: collect(pipe), maxSameKey: () => maxSameKey, all };
}

const done = (log: { job: string; ok: boolean }[], k: string) => log.filter((l) => l.ok && l.job.startsWith(k)).map((l) => l.job);

describe('per-key ordering', () => {
  it('runs tasks with the same key one at a time, in accepted order, while other keys run alongside', async () => {
    const { pipe, clock, log, send, maxSameKey, all } = keyed({ concurrency: 4, orderByKey: true });
    await send(['A', 'B', 'C'], 5);
    await drainOn(clock, pipe, 60_000, 5);
    for (const k of ['A', 'B', 'C']) expect(done(log, k)).toEqual(range(5).map((i) => `${k}${i}`));
    expect(maxSameKey()).toBe(1);
    expect(all.max, 'different keys ran at the same time').toBe(3);
  });

  it("holds a key's later tasks behind its first task's retries while other keys proceed", async () => {
    const { pipe, clock, log, send, outcomes } = keyed({ concurrency: 3, orderByKey: true, retry: { backoff: fixed(100) } }, (j, attempt) => j.k === 'A' && j.i === 0 && attempt < 3);
    await send(['A', 'B'], 4);
    await drainOn(clock, pipe, 60_000, 5);
    expect(done(log, 'A')).toEqual(['A0', 'A1', 'A2', 'A3']);
    const a0 = log.find((l) => l.job === 'A0' && l.ok)!;
    const a1 = log.find((l) => l.job === 'A1')!;
    expect(a1.start, 'A1 waited for A0 to succeed on its third attempt').toBeGreaterThanOrEqual(a0.end);
    const lastB = Math.max(...log.filter((l) => l.job.startsWith('B')).map((l) => l.end));
    expect(lastB, 'key B did not wait for A0').toBeLessThan(a0.start);
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
  });

  it('hands a key on to its next task once its first task is dead-lettered', async () => {
    const { pipe, clock, log, send, outcomes } = keyed({ orderByKey: true, concurrency: 2, retry: { maxAttempts: 2, backoff: fixed(50) } }, (j) => j.k === 'A' && j.i === 0);
    await send(['A'], 3);
    await drainOn(clock, pipe, 60_000, 5);
    expect(log.map((l) => l.job)).toEqual(['A0', 'A0', 'A1', 'A2']);
    expect(log[2]!.start).toBeGreaterThanOrEqual(log[1]!.end);
    expect(outcomes.map((o) => [o.output ?? null, o.status])).toEqual([[null, 'dead-lettered'], ['A1', 'completed'], ['A2', 'completed']]);
  });

  it('holds the next task of a key while its first task times out and is retried', async () => {
    const { pipe, clock, log, send, outcomes } = keyed(
      { orderByKey: true, concurrency: 2, timeoutMs: 50, retry: { backoff: fixed(10) } },
      () => false,
      (j, attempt) => (j.i === 0 && attempt === 1 ? 1_000 : 5),
    );
    await send(['A'], 2);
    await drainOn(clock, pipe, 60_000, 5);
    const retryOfA0 = log.find((l) => l.job === 'A0' && l.start > 0)!;
    expect(retryOfA0).toMatchObject({ start: 60, end: 65 });
    expect(log.find((l) => l.job === 'A1')!.start).toBeGreaterThanOrEqual(65);
    expect(outcomes.map((o) => o.output)).toEqual(['A0', 'A1']);
  });

  it('never holds tasks that have no key', async () => {
    const { pipe, clock, send, all } = keyed({ concurrency: 4, orderByKey: true });
    await send(['A'], 8, false);
    await drainOn(clock, pipe, 60_000, 5);
    expect(all.max).toBe(4);
  });

  it('lets tasks with the same key overlap when orderByKey is off', async () => {
    const { pipe, clock, send, maxSameKey } = keyed({ concurrency: 3 });
    await send(['A'], 6);
    await drainOn(clock, pipe, 60_000, 5);
    expect(maxSameKey()).toBe(3);
  });

  it('keeps each key in accepted order through every ordered stage of a pipeline', async () => {
    const { system, clock } = testSystem();
    const seen: string[] = [];
    const stage = (name: string) =>
      agent({
        name,
        concurrency: 3,
        orderByKey: true,
        handle: async (j: Job) => {
          await sleep(clock, 1 + ((j.i * 13 + j.k.charCodeAt(0)) % 7));
          if (name === 'second') seen.push(`${j.k}${j.i}`);
          return j;
        },
      });
    const pipe = system.spawnPipeline<Job, Job>({ name: 'p', stages: [stage('first'), stage('second')] });
    for (let i = 0; i < 6; i++) for (const k of ['A', 'B', 'C', 'D']) await pipe.send({ k, i }, { key: k });
    await drainOn(clock, pipe, 60_000, 5);
    for (const k of ['A', 'B', 'C', 'D']) expect(seen.filter((s) => s.startsWith(k))).toEqual(range(6).map((i) => `${k}${i}`));
  });
});

describe('concurrency', () => {
  it.each([1, 3, 8])('runs at most %i tasks at once at a stage, and uses them all', async (n) => {
    const { pipe, clock, send, all } = keyed({ concurrency: n });
    await send(['A', 'B', 'C', 'D', 'E'], 6, false);
    await drainOn(clock, pipe, 60_000, 5);
    expect(all.max).toBe(n);
    expect(pipe.stats().completed).toBe(30);
  });

  it('stays within its limit while failed tasks are retried', async () => {
    const { pipe, clock, send, all, outcomes } = keyed({ concurrency: 3, breaker: false, retry: { backoff: fixed(3) } }, (j, attempt) => j.i % 2 === 0 && attempt === 1);
    await send(['A', 'B', 'C'], 6, false);
    await drainOn(clock, pipe, 60_000, 5);
    expect(all.max).toBe(3);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(18);
    expect(pipe.stats().stages[0]!.inFlight).toBe(0);
  });
});
