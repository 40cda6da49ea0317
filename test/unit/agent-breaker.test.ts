import { describe, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal, simulatedClock, type BreakerOptions } from '../../system/index.js';
import { killableJournal } from '../../testkit/index.js';
import { advanceUntil, fixed, ofType, range, sleep } from '../support/agent-kit.js';
import { collect, drainOn, settle, testSystem } from '../support/helpers.js';

/** One stage that fails every task while `down.now` is true. */
function outage(breaker?: BreakerOptions | false) {
  const t = testSystem();
  const down = { now: true };
  const calls: { id: string; at: number; attempt: number }[] = [];
  const pipe = t.system.spawnPipeline<number, number>({
    name: 'p',
    stages: [
      agent({
        name: 'db',
        retry: { backoff: fixed(10) },
        ...(breaker === undefined ? {} : { breaker }),
        handle: (x: number, ctx) => {
          calls.push({ id: ctx.taskId, at: t.clock.now(), attempt: ctx.attempt });
          if (down.now) throw new Error('db down');
          return x;
        },
      }),
    ],
  });
  return { ...t, pipe, down, calls, outcomes: collect(pipe), opened: () => ofType(t.events, 'breaker-opened') };
}

describe('the breaker', () => {
  it('opens after five fresh tasks fail in a row, holds the inbox, and charges none of them', async () => {
    const { pipe, clock, calls, opened } = outage();
    await pipe.sendMany(range(8));
    await settle();
    expect(calls).toHaveLength(5);
    expect(opened()).toMatchObject([{ path: 'p/db', at: 0, probes: 0 }]);
    expect(opened()[0]!.probeInMs).toBeGreaterThanOrEqual(800);
    expect(opened()[0]!.probeInMs).toBeLessThanOrEqual(1_200);
    expect(pipe.stats().stages[0]).toMatchObject({ breaker: 'open', deadLettered: 0, inbox: 8 });
    await clock.advance(opened()[0]!.probeInMs - 1);
    expect(calls, 'nothing runs while the breaker holds, not even the due retries').toHaveLength(5);
    expect(pipe.stats()).toMatchObject({ pending: 8, deadLettered: 0 });
  });

  it('runs one uncharged probe per opening and waits longer after each failed probe', async () => {
    const { pipe, clock, calls, opened } = outage();
    await pipe.sendMany(range(8));
    await settle();
    await clock.advance(20_000);
    const openings = opened();
    expect(openings.map((e) => e.probes).slice(0, 4)).toEqual([0, 1, 2, 3]);
    const [, second, third] = openings;
    expect(second!.probeInMs).toBeGreaterThanOrEqual(1_600);
    expect(second!.probeInMs).toBeLessThanOrEqual(2_400);
    expect(third!.probeInMs).toBeGreaterThanOrEqual(3_200);
    expect(third!.probeInMs).toBeLessThanOrEqual(4_800);
    expect(calls.length, 'one probe per opening after the first five').toBe(5 + openings.length - 1);
    for (const e of openings.slice(1)) expect(calls.filter((c) => c.at === e.at)).toHaveLength(1);
    expect(calls.every((c) => c.attempt === 1), 'no task was charged for the outage').toBe(true);
    expect(pipe.stats().deadLettered).toBe(0);
  });

  it('closes when a probe succeeds, and then every held task completes with no charged attempt', async () => {
    const { pipe, clock, events, down, outcomes, opened } = outage();
    await pipe.sendMany(range(20));
    await settle();
    await clock.advance(2_500);
    down.now = false;
    await drainOn(clock, pipe);
    const closed = ofType(events, 'breaker-closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]!.heldMs).toBe(closed[0]!.at - opened()[0]!.at);
    expect(outcomes.map((o) => o.status)).toEqual(Array(20).fill('completed'));
    expect(outcomes.flatMap((o) => o.errors).filter((e) => e.charged)).toEqual([]);
    expect(outcomes.every((o) => o.attempts === 1)).toBe(true);
    expect(pipe.stats().stages[0]!.breaker).toBe('closed');
  });

  it('probes with a task that has not failed rather than one waiting for its retry', async () => {
    const { system, clock } = testSystem();
    let down = true;
    const calls: string[] = [];
    const pipe = system.spawnPipeline<string, string>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          retry: { backoff: fixed(10) },
          breaker: { backoff: fixed(1_000) },
          handle: (id: string) => {
            calls.push(`${id}@${clock.now()}`);
            if (id === 'old' || (down && id !== 'ok')) throw new Error(`fail ${id}`);
            return id;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    for (const id of ['old', 'ok', 'f1', 'f2', 'f3', 'f4', 'f5']) await pipe.send(id, { id });
    await settle();
    await clock.advance(1_500);
    // The probe is a task that has not failed (at random among them: see StageQueues.takeProbe), never 'old'.
    const first = calls.filter((c) => c.endsWith('@1000'));
    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(/^f[1-5]@1000$/);
    down = false;
    await drainOn(clock, pipe);
    const second = calls.find((c) => c.endsWith('@2000'));
    expect(second, 'the second probe skipped the retried task and the task probed before').toMatch(/^f[1-5]@2000$/);
    expect(second!.split('@')[0]).not.toBe(first[0]!.split('@')[0]);
    expect(outcomes.find((o) => o.id === 'old')).toMatchObject({ status: 'dead-lettered', attempts: 3 });
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(6);
  });

  it('probes a stage that orders by key with a task that has not failed here, not with the tasks whose failures opened it', async () => {
    // The arrangement of a stage that orders by key across processes (NATS key partitions): what it
    // holds waits in `ready`, the five tasks that opened the breaker in front. Each of them fails until
    // it is charged (ctx.attempt 1: a task that fails once), so probing them in turn held the four
    // healthy tasks behind five failed probes: 1 + 2 + 4 + 8 + 16 s (here ~3 s: the retries of f1-f4
    // came due behind the healthy tasks; over NATS they were all in front, and a 60 s hold followed).
    const journal = memoryJournal();
    const killable = killableJournal(journal);
    const ids = ['f1', 'f2', 'f3', 'f4', 'f5', 'h1', 'h2', 'h3', 'h4'];
    const stage = (handle: (id: string, ctx: { attempt: number }) => string | Promise<string>) =>
      agent({ name: 'a', orderByKey: true, concurrency: 5, retry: { backoff: fixed(10) }, breaker: { backoff: fixed(1_000) }, handle });
    const first = createSystem({ logger: false, journal: killable });
    const stuck = first.spawnPipeline<string, string>({ name: 'p', stages: [stage(() => new Promise<string>(() => undefined))] });
    for (const id of ids) await stuck.send(id, { id, key: id });
    killable.kill(); // the backlog is recovered into `ready`, in accepted order

    const clock = simulatedClock();
    const second = createSystem({ logger: false, journal, clock });
    const calls: string[] = [];
    const pipe = second.spawnPipeline<string, string>({
      name: 'p',
      stages: [
        stage(async (id, ctx) => {
          calls.push(`${id}@${clock.now()}`);
          await Promise.resolve();
          if (id.startsWith('f') && ctx.attempt === 1) throw new Error(`${id} fails once`);
          return id;
        }),
      ],
    });
    const outcomes = collect(pipe);
    await settle();
    expect(calls, 'the five f tasks ran first and opened the breaker').toEqual(['f1@0', 'f2@0', 'f3@0', 'f4@0', 'f5@0']);
    expect(pipe.stats().stages[0]!.breaker).toBe('open');
    await clock.advance(1_000);
    await settle();
    expect(calls.filter((c) => c.endsWith('@1000'))[0], 'the first probe is a healthy task').toBe('h1@1000');
    expect(pipe.stats().stages[0]!.breaker, 'and it closed the breaker').toBe('closed');
    await drainOn(clock, pipe);
    expect(clock.now(), 'done a moment after the first probe').toBeLessThan(1_100);
    expect(outcomes.filter((o) => o.status === 'completed').map((o) => o.id).sort()).toEqual(ids);
    await second.shutdown();
  });

  it('is not fed by retried tasks: four poison tasks among healthy ones are dead-lettered and it never opens', async () => {
    const { system, clock, events } = testSystem();
    const pipe = system.spawnPipeline<string, string>({
      name: 'p',
      stages: [agent({ name: 'a', retry: { backoff: fixed(10) }, handle: (s: string) => { if (s.startsWith('poison')) throw new Error(s); return s; } })],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([...range(4).map((i) => `poison${i}`), ...range(20).map((i) => `ok${i}`)]);
    await drainOn(clock, pipe);
    expect(outcomes.filter((o) => o.status === 'dead-lettered').map((o) => o.error!.message).sort()).toEqual(['poison0', 'poison1', 'poison2', 'poison3']);
    expect(outcomes.filter((o) => o.status === 'dead-lettered').every((o) => o.attempts === 3 && o.errors.every((e) => e.charged))).toBe(true);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(20);
    expect(ofType(events, 'breaker-opened')).toHaveLength(0);
  });

  it('never opens or escalates at a 3% poison rate over 1000 tasks on a concurrent async stage', async () => {
    const { system, clock, events } = testSystem(3);
    const poison = (x: number) => x % 33 === 5;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [
        agent({
          name: 'a',
          concurrency: 4,
          retry: { backoff: fixed(20) },
          handle: async (x: number) => {
            await sleep(clock, 1 + (x % 3));
            if (poison(x)) throw new Error(`poison ${x}`);
            return x;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany(range(1_000));
    await drainOn(clock, pipe, 3_600_000, 100);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered').map((o) => Number(o.error!.message.split(' ')[1]));
    expect(dead.sort((a, b) => a - b)).toEqual(range(1_000).filter(poison));
    expect(outcomes.filter((o) => o.status === 'completed').map((o) => o.output).sort((a, b) => a! - b!)).toEqual(range(1_000).filter((x) => !poison(x)));
    expect(ofType(events, 'breaker-opened')).toHaveLength(0);
    expect(ofType(events, 'escalated')).toHaveLength(0);
  });

  it('rides out a ten-minute outage downstream: every task completes, none is dead-lettered, upstream runs each once', async () => {
    const { system, clock, events } = testSystem();
    const downUntil = 10 * 60_000;
    let upstream = 0;
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      defaults: { mailbox: { capacity: 5 } },
      stages: [
        agent({ name: 'parse', handle: (x: number) => (upstream++, x) }),
        agent({
          name: 'store',
          concurrency: 2,
          handle: async (x: number) => {
            await sleep(clock, 5);
            if (clock.now() < downUntil) throw new Error('db down');
            return x;
          },
        }),
      ],
    });
    const outcomes = collect(pipe);
    let sent = false;
    void pipe.sendMany(range(60)).then(() => (sent = true));
    await advanceUntil(clock, () => clock.now() >= 5 * 60_000, 3_600_000, 1_000);
    expect(sent, 'back-pressure reached the producer').toBe(false);
    expect(pipe.stats()).toMatchObject({ deadLettered: 0 });
    expect(pipe.stats().stages[0]!.inbox).toBeLessThanOrEqual(5);
    expect(['open', 'probing']).toContain(pipe.stats().stages[1]!.breaker);
    await advanceUntil(clock, () => sent && pipe.stats().pending === 0, 3_600_000, 1_000);
    expect(outcomes.map((o) => o.status)).toEqual(Array(60).fill('completed'));
    expect(outcomes.flatMap((o) => o.errors).filter((e) => e.charged)).toEqual([]);
    expect(upstream).toBe(60);
    expect(ofType(events, 'dead-lettered')).toHaveLength(0);
    expect(ofType(events, 'escalated')).toHaveLength(0);
    expect(ofType(events, 'breaker-closed')).toHaveLength(1);
    expect(ofType(events, 'breaker-closed')[0]!.at).toBeGreaterThanOrEqual(downUntil);
  });

  it('opens after the configured threshold, and a success between fresh failures resets the count', async () => {
    const { system, clock, events } = testSystem();
    const pipe = system.spawnPipeline<string, string>({
      name: 'p',
      stages: [agent({ name: 'a', breaker: { threshold: 2 }, retry: { maxAttempts: 1 }, handle: (s: string) => { if (s === 'bad') throw new Error(s); return s; } })],
    });
    await pipe.sendMany(['bad', 'ok', 'bad', 'ok', 'bad', 'ok']);
    await drainOn(clock, pipe);
    expect(ofType(events, 'breaker-opened')).toHaveLength(0);
    await pipe.sendMany(['bad', 'bad', 'ok']);
    await settle();
    expect(ofType(events, 'breaker-opened')).toHaveLength(1);
  });

  it('never opens when it is turned off: fresh failures are charged and dead-lettered', async () => {
    const { pipe, clock, opened, outcomes } = outage(false);
    await pipe.sendMany(range(8));
    await drainOn(clock, pipe);
    expect(opened()).toHaveLength(0);
    expect(outcomes.map((o) => [o.status, o.attempts])).toEqual(Array(8).fill(['dead-lettered', 3]));
  });

  it('holds an all-poison batch as long as it takes with maxHoldMs Infinity, and says so in stats', async () => {
    const { pipe, clock, opened } = outage({ maxHoldMs: Infinity });
    await pipe.sendMany(range(6));
    await advanceUntil(clock, () => false, 3_600_000, 10_000);
    expect(pipe.stats()).toMatchObject({ pending: 6, deadLettered: 0 });
    expect(['open', 'probing']).toContain(pipe.stats().stages[0]!.breaker);
    expect(Math.max(...opened().map((e) => e.probeInMs))).toBeLessThanOrEqual(60_000);
  });

  it('dead-letters an all-poison batch once the breaker has held for maxHoldMs', async () => {
    const { pipe, clock, outcomes } = outage({ maxHoldMs: 10_000 });
    await pipe.sendMany(range(6));
    await drainOn(clock, pipe, 600_000, 100);
    expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill('dead-lettered'));
    expect(Math.min(...outcomes.map((o) => o.errors.at(-1)!.at))).toBeGreaterThanOrEqual(10_000);
  });
});
