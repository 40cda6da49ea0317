import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal, prometheusText, type BatonEvent, type RunTrace } from '../../system/index.js';
import { drainOn, testSystem } from '../support/helpers.js';

const unsubscribe: (() => void)[] = [];
afterEach(() => {
  for (const u of unsubscribe.splice(0)) u();
});

function onChannel(name: string): unknown[] {
  const seen: unknown[] = [];
  const fn = (message: unknown) => seen.push(message);
  diagnostics.subscribe(name, fn);
  unsubscribe.push(() => diagnostics.unsubscribe(name, fn));
  return seen;
}

/** Every publish on the baton:run tracing channel, as [phase, taskId, attempt, result or error message]. */
function traceRuns(): [string, string, number, unknown][] {
  const seen: [string, string, number, unknown][] = [];
  const note = (phase: string) => (t: RunTrace) => seen.push([phase, t.taskId, t.attempt, phase === 'error' ? (t.error as Error).message : t.result]);
  const handlers = { start: note('start'), end: note('end'), asyncStart: note('asyncStart'), asyncEnd: note('asyncEnd'), error: note('error') };
  const channel = diagnostics.tracingChannel<object, RunTrace>('baton:run');
  channel.subscribe(handlers);
  unsubscribe.push(() => channel.unsubscribe(handlers));
  return seen;
}

describe('diagnostics channels', () => {
  it('publishes each lifecycle event on baton:<type>, the same object system.events delivers', async () => {
    const dead = onChannel('baton:dead-lettered');
    const crashed = onChannel('baton:crashed');
    const { system, clock } = testSystem();
    const fromEvents: BatonEvent[] = [];
    system.events.on('dead-lettered', (e) => fromEvents.push(e));
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => { if (x === 2) throw new Error('two'); return x; }, retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 1 } } })] });
    await pipe.sendMany([1, 2, 3]);
    await drainOn(clock, pipe);
    expect(crashed).toHaveLength(2);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toBe(fromEvents[0]);
    expect(dead[0]).toMatchObject({ type: 'dead-lettered', path: 'p/a', taskId: 'p-2', error: { code: 'ERR_TASK_FAILED', message: 'two' } });
  });

  it('traces every handler run: start and end around a sync run, asyncStart and asyncEnd when a promise settles, error on failure', async () => {
    const runs = traceRuns();
    const { system, clock } = testSystem();
    const sync = agent({ name: 'sync', handle: (x: number) => { if (x === 2) throw new Error('sync two'); return x * 10; }, retry: { maxAttempts: 1 } });
    const slow = agent({ name: 'slow', handle: async (x: number) => { if (x === 30) throw new Error('async three'); return x + 1; }, retry: { maxAttempts: 1 } });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [sync, slow] });
    await pipe.sendMany([1, 2, 3]);
    await drainOn(clock, pipe);
    const of = (id: string) => runs.filter((r) => r[1] === id).map((r) => [r[0], r[3]]);
    expect(of('p-1')).toEqual([['start', undefined], ['end', 10], ['start', undefined], ['end', undefined], ['asyncStart', 11], ['asyncEnd', 11]]);
    expect(of('p-2')).toEqual([['start', undefined], ['error', 'sync two'], ['end', undefined]]);
    expect(of('p-3')).toEqual([['start', undefined], ['end', 30], ['start', undefined], ['end', undefined], ['asyncStart', undefined], ['error', 'async three'], ['asyncEnd', undefined]]);
    expect(runs.every((r) => r[2] === 1)).toBe(true);
  });

  it('ends the trace of a run that times out, with the timeout as its error', async () => {
    const runs = traceRuns();
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'hang', handle: () => new Promise<number>(() => undefined), timeoutMs: 50, retry: { maxAttempts: 1 } })] });
    await pipe.send(1);
    await drainOn(clock, pipe);
    expect(runs.map((r) => r[0])).toEqual(['start', 'end', 'asyncStart', 'error', 'asyncEnd']);
    expect(runs[3]![3]).toMatch(/timed out/);
  });

  it('publishes nothing on a channel nobody subscribes to, and leaves the fast lane only while someone traces', async () => {
    const { system, clock } = testSystem();
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    await pipe.sendMany([1, 2]);
    await drainOn(clock, pipe);
    const runs = traceRuns();
    await pipe.sendMany([3]);
    await drainOn(clock, pipe);
    expect(runs.map((r) => [r[0], r[1]])).toEqual([['start', 'p-3'], ['end', 'p-3']]);
  });
});

describe('snapshot and metrics', () => {
  it('reports every pipeline with its stages, dead letters by stage and code, and the journal lag', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const pipe = system.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'ingest', handle: (x: number) => { if (x < 0) throw new Error('corrupt'); return x; }, retry: { maxAttempts: 1 } }), agent({ name: 'store', handle: (x: number) => x })] });
    await pipe.sendMany([1, -1, 2, -2, 3]);
    await pipe.drain();
    const snap = system.snapshot();
    expect(snap.pipelines).toHaveLength(1);
    expect(snap.pipelines[0]).toMatchObject({ name: 'legal', accepted: 5, completed: 3, deadLettered: 2, pending: 0, deadLetterReasons: [{ stage: 'ingest', code: 'ERR_TASK_FAILED', count: 2 }], journal: { queuedOps: 0, committing: false } });
    expect(snap.pipelines[0]!.stages.map((s) => [s.name, s.received, s.failed])).toEqual([['ingest', 5, 2], ['store', 3, 0]]);
    await system.shutdown();
  });

  it('renders Prometheus text: HELP and TYPE per family, one sample per pipeline and stage, labels escaped', async () => {
    const system = createSystem({ logger: false });
    system.spawn({ kind: 'actor', receive: () => undefined }, { name: 'logger' });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => { if (x === 2) throw new Error('no'); return x; }, retry: { maxAttempts: 1 } })] });
    await pipe.sendMany([1, 2, 3]);
    await pipe.drain();
    const text = system.metrics();
    const lines = text.trim().split('\n');
    expect(lines).toContain('# TYPE baton_pipeline_tasks_accepted_total counter');
    expect(lines).toContain('baton_pipeline_tasks_accepted_total{pipeline="p"} 3');
    expect(lines).toContain('baton_pipeline_tasks_dead_lettered_total{pipeline="p",stage="a",code="ERR_TASK_FAILED"} 1');
    expect(lines).toContain('baton_stage_runs_failed_total{pipeline="p",stage="a"} 1');
    expect(lines).toContain('baton_stage_inbox_capacity{pipeline="p",stage="a"} 1000');
    expect(lines).toContain('baton_stage_breaker_state{pipeline="p",stage="a"} 0');
    // Every sample line names a family declared above it with HELP and TYPE.
    const declared = new Set(lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]));
    for (const l of lines.filter((l) => !l.startsWith('#'))) expect(declared.has(l.split(/[{ ]/)[0]!)).toBe(true);
    expect(system.snapshot().actors).toEqual([{ path: 'logger', terminated: false }]);
    await system.shutdown();
  });

  it('escapes backslashes, quotes and newlines in label values', () => {
    const stats = { name: 'a"b\\c\nd', status: 'running', accepted: 1, pending: 0, completed: 1, deadLettered: 0, deadLetterReasons: [], stages: [] } as const;
    expect(prometheusText({ at: 0, pipelines: [stats], actors: [], supervisors: [] })).toContain('baton_pipeline_tasks_accepted_total{pipeline="a\\"b\\\\c\\nd"} 1');
  });
});

describe('operator actions and flows as events', () => {
  it('tells of a cancel, a replay (with who asked), an overflowing send and each journal commit', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const seen: BatonEvent[] = [];
    system.events.on((e) => {
      if (['cancelled', 'replayed', 'overflowed', 'journal-committed'].includes(e.type)) seen.push(e);
    });
    const channel = onChannel('baton:journal-committed');
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'a', handle: (x: number) => { if (x < 0) throw new Error('bad'); return new Promise<number>((r) => setTimeout(() => r(x), x)); }, retry: { maxAttempts: 1 } })],
    });
    await pipe.send(-1, { id: 'bad' });
    await pipe.send(10_000, { id: 'slow' });
    await new Promise((r) => setTimeout(r, 20));
    expect(pipe.cancel('slow', 'no longer needed')).toBe(true);
    await pipe.drain();
    expect(pipe.replay(['bad', 'nope'], { by: 'ops runbook 7' })).toBe(1);
    await pipe.drain();
    const full = system.spawnPipeline<number, number>({ name: 'full', stages: [agent({ name: 'a', handle: () => new Promise<number>(() => undefined), mailbox: { capacity: 1, overflow: 'reject' } })] });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await full.send(i));
    await system.shutdown({ drainMs: 0 });
    expect(results).toContain('rejected');
    expect(seen.find((e) => e.type === 'cancelled')).toMatchObject({ path: 'p', taskId: 'slow', reason: 'no longer needed' });
    expect(seen.find((e) => e.type === 'replayed')).toMatchObject({ path: 'p', taskIds: ['bad'], by: 'ops runbook 7' });
    expect(seen.filter((e) => e.type === 'overflowed').length).toBe(results.filter((r) => r === 'rejected').length);
    expect(seen.find((e) => e.type === 'overflowed')).toMatchObject({ path: 'full/a', result: 'rejected' });
    const commits = seen.filter((e): e is Extract<BatonEvent, { type: 'journal-committed' }> => e.type === 'journal-committed');
    expect(commits.length).toBeGreaterThan(0);
    expect(commits.every((c) => c.ops > 0 && c.ms >= 0)).toBe(true);
    expect(channel.length).toBe(commits.length);
  });
});
