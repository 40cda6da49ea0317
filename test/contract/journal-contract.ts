import { describe, expect, it } from 'vitest';
import { encode } from '../../src/codec.js';
import { agent, createSystem, type Journal, type JournalOp, type PipelineJournal } from '../../system/index.js';
import { killableJournal } from '../../testkit/index.js';
import { collect } from '../support/helpers.js';

/**
 * The journal port's contract (src/journal/journal.ts), as a suite every backend runs: first the
 * port itself (what a commit does, paging, recovery reads, operator reads), then the runtime over
 * the backend (group commit, recorded before the handler starts, outcomes after the commit,
 * recovery paging under the inbox bound, crash accounting). `make` gives a fresh, empty journal;
 * `reopen` (durable backends) the same journal as a new process would see it.
 */
export interface Backend {
  readonly name: string;
  make(): Journal | Promise<Journal>;
  /** The same storage, opened again (a new process); undefined: reuse the same object. */
  reopen?(journal: Journal): Journal | Promise<Journal>;
}

const bytes = (value: unknown): Uint8Array => encode(value, 'contract payload');
const accept = (id: string, seq: number, stage = 's1', key?: string): JournalOp => ({ op: 'accept', id, seq, key, stage, payload: bytes({ id }) });

async function commit(pj: PipelineJournal, ...ops: JournalOp[]): Promise<void> {
  await pj.commit(ops);
}

export function journalContract(backend: Backend): void {
  describe(`the journal port on ${backend.name}`, () => {
    it('holds an accepted task as pending, with its seq, key, stage and payload', async () => {
      const pj = (await backend.make()).openPipeline('p');
      expect(pj.lastSeq()).toBe(0);
      await commit(pj, accept('a', 1, 's1', 'k'), accept('b', 2));
      expect(pj.status('a')).toBe('pending');
      expect(pj.task('a')).toMatchObject({ id: 'a', seq: 1, key: 'k', stage: 's1', attempts: 0 });
      expect(pj.task('b')!.key).toBeUndefined();
      expect(pj.lastSeq()).toBe(2);
      expect(pj.counts()).toEqual({ pending: 2, completed: 0, dead: 0 });
    });

    it('ignores a second accept of an id it holds, keeping the first payload', async () => {
      const pj = (await backend.make()).openPipeline('p');
      await commit(pj, accept('a', 1));
      await commit(pj, { op: 'accept', id: 'a', seq: 2, key: undefined, stage: 's2', payload: bytes('other') });
      expect(pj.task('a')).toMatchObject({ seq: 1, stage: 's1', payload: bytes({ id: 'a' }) });
      expect(pj.counts().pending).toBe(1);
    });

    it('applies the ops of one commit in order: a move, a failure and a completion of the same task', async () => {
      const pj = (await backend.make()).openPipeline('p');
      const errors = bytes([{ stage: 's2', attempt: 1, at: 5, charged: true, error: { name: 'Error', message: 'x' } }]);
      await commit(pj, accept('a', 1), { op: 'move', id: 'a', stage: 's2', payload: bytes(2) }, { op: 'fail', id: 'a', attempts: 1, errors });
      expect(pj.task('a')).toMatchObject({ stage: 's2', attempts: 1, payload: bytes(2), errors });
      await commit(pj, { op: 'move', id: 'a', stage: 's3', payload: bytes(3) }, { op: 'complete', id: 'a', stage: 's3', attempts: 1, output: bytes(4), at: 1000 });
      expect(pj.status('a')).toBe('completed');
      expect(pj.task('a')).toBeUndefined();
      expect(pj.outcome('a')).toMatchObject({ id: 'a', status: 'completed', stage: 's3', attempts: 1, output: bytes(4), finishedAt: 1000 });
    });

    it('resets the attempts at each move: they count at the current stage only', async () => {
      const pj = (await backend.make()).openPipeline('p');
      await commit(pj, accept('a', 1), { op: 'fail', id: 'a', attempts: 2, errors: bytes([]) }, { op: 'move', id: 'a', stage: 's2', payload: bytes(1) });
      expect(pj.task('a')!.attempts).toBe(0);
    });

    it('ignores writes to a task that is no longer pending, and replays only dead letters', async () => {
      const pj = (await backend.make()).openPipeline('p');
      const errors = bytes([{ stage: 's1', attempt: 2, at: 1, charged: true, error: { name: 'Error', message: 'bad' } }]);
      await commit(pj, accept('a', 1), accept('b', 2), { op: 'complete', id: 'a', stage: 's1', attempts: 1, output: bytes(1), at: 10 }, { op: 'dead', id: 'b', stage: 's1', attempts: 2, code: 'ERR_TASK_FAILED', errors, at: 11 });
      await commit(pj, { op: 'move', id: 'a', stage: 's2', payload: bytes(9) }, { op: 'fail', id: 'b', attempts: 9, errors: bytes([]) }, { op: 'replay', id: 'a' });
      expect(pj.outcome('a')).toMatchObject({ status: 'completed', stage: 's1' });
      expect(pj.outcome('b')).toMatchObject({ status: 'dead', attempts: 2, code: 'ERR_TASK_FAILED', errors });
      await commit(pj, { op: 'replay', id: 'b' });
      expect(pj.status('b')).toBe('pending');
      expect(pj.task('b')).toMatchObject({ stage: 's1', attempts: 0 });
      expect(pj.outcome('b')).toBeUndefined();
    });

    it('pages pending tasks of a stage in seq order, after a seq and up to one, at most a limit', async () => {
      const pj = (await backend.make()).openPipeline('p');
      await commit(pj, ...[5, 1, 4, 2, 3, 6].map((seq) => accept(`t${seq}`, seq, seq === 6 ? 's2' : 's1')));
      await commit(pj, { op: 'complete', id: 't4', stage: 's1', attempts: 1, output: bytes(0), at: 1 });
      const ids = async (after: number, upTo: number, limit: number) => (await pj.pendingAt('s1', after, upTo, limit)).map((t) => t.id);
      expect(await ids(0, 10, 10)).toEqual(['t1', 't2', 't3', 't5']);
      expect(await ids(0, 10, 2)).toEqual(['t1', 't2']);
      expect(await ids(2, 10, 10)).toEqual(['t3', 't5']);
      expect(await ids(0, 3, 10)).toEqual(['t1', 't2', 't3']);
      expect([...pj.pendingStages()].sort()).toEqual([
        ['s1', { count: 4, maxSeq: 5 }],
        ['s2', { count: 1, maxSeq: 6 }],
      ]);
    });

    it('keeps one set of runs in progress per stage, replaced by each start and forgotten on release', async () => {
      const pj = (await backend.make()).openPipeline('p');
      await commit(pj, accept('a', 1), accept('b', 2), { op: 'start', stage: 's1', ids: ['a', 'b'] }, { op: 'start', stage: 's2', ids: ['c'], isolated: true });
      await commit(pj, { op: 'start', stage: 's1', ids: ['b'] });
      const running = pj.runningAtCrash();
      expect([...running.get('s1')!.ids]).toEqual(['b']);
      expect(running.get('s1')!.isolated).toBe(false);
      expect(running.get('s2')).toEqual({ ids: new Set(['c']), isolated: true });
      pj.releaseRunning();
      expect(pj.runningAtCrash().size).toBe(0);
    });

    it('lists dead letters oldest first with a limit and an offset', async () => {
      const pj = (await backend.make()).openPipeline('p');
      const dead = (id: string, at: number): JournalOp => ({ op: 'dead', id, stage: 's1', attempts: 1, code: 'ERR_TASK_FAILED', errors: bytes([]), at });
      await commit(pj, accept('a', 1), accept('b', 2), accept('c', 3), dead('c', 10), dead('a', 20), dead('b', 30));
      expect(pj.deadLetters(10, 0).map((d) => d.id)).toEqual(['c', 'a', 'b']);
      expect(pj.deadLetters(1, 1).map((d) => d.id)).toEqual(['a']);
      expect(pj.deadLetters(10, 3)).toEqual([]);
    });

    it('prunes completed tasks that finished before an instant and keeps dead letters', async () => {
      const pj = (await backend.make()).openPipeline('p');
      await commit(pj, accept('a', 1), accept('b', 2), accept('c', 3));
      await commit(pj, { op: 'complete', id: 'a', stage: 's1', attempts: 1, output: bytes(1), at: 100 }, { op: 'complete', id: 'b', stage: 's1', attempts: 1, output: bytes(1), at: 300 });
      await commit(pj, { op: 'dead', id: 'c', stage: 's1', attempts: 1, code: 'ERR_TASK_FAILED', errors: bytes([]), at: 50 });
      expect(await pj.pruneCompleted(200)).toBe(1);
      expect(pj.status('a')).toBeUndefined();
      expect(pj.status('b')).toBe('completed');
      expect(pj.status('c')).toBe('dead');
    });

    it("keeps each pipeline's tasks apart and lists the pipelines that hold tasks", async () => {
      const journal = await backend.make();
      const p = journal.openPipeline('p');
      const q = journal.openPipeline('q');
      journal.openPipeline('empty');
      await commit(p, accept('a', 1));
      await commit(q, accept('a', 1), accept('b', 2));
      expect(p.counts().pending).toBe(1);
      expect(q.counts().pending).toBe(2);
      expect(journal.pipelines()).toEqual(['p', 'q']);
    });

    it('holds what it committed when opened again, as a new process would', async () => {
      const first = await backend.make();
      const pj = first.openPipeline('p');
      await commit(pj, accept('a', 1), accept('b', 2), { op: 'start', stage: 's1', ids: ['a'] }, { op: 'fail', id: 'b', attempts: 1, errors: bytes([]) });
      const again = (await backend.reopen?.(first)) ?? first;
      const reopened = again.openPipeline('p');
      expect(reopened.lastSeq()).toBe(2);
      expect(reopened.task('b')!.attempts).toBe(1);
      expect([...reopened.runningAtCrash().get('s1')!.ids]).toEqual(['a']);
    });

    it('keeps state values per pipeline across a reopen; a null forgets one', async () => {
      const first = await backend.make();
      const p = first.openPipeline('p');
      const q = first.openPipeline('q');
      await commit(p, { op: 'state', key: 'breaker:s1', value: '{"probeAt":5}' }, { op: 'state', key: 'gone', value: 'x' });
      await commit(q, { op: 'state', key: 'breaker:s1', value: 'other pipeline' });
      await commit(p, { op: 'state', key: 'gone', value: null });
      expect([p.state('breaker:s1'), p.state('gone'), q.state('breaker:s1')]).toEqual(['{"probeAt":5}', undefined, 'other pipeline']);
      const again = (await backend.reopen?.(first)) ?? first;
      expect([again.openPipeline('p').state('breaker:s1'), again.openPipeline('p').state('gone'), again.openPipeline('q').state('breaker:s1')]).toEqual(['{"probeAt":5}', undefined, 'other pipeline']);
    });

    it('drops a pending task without an outcome, ignores a drop of a finished one, and keeps the drop across a reopen', async () => {
      const first = await backend.make();
      const pj = first.openPipeline('p');
      await commit(pj, accept('a', 1), accept('b', 2), accept('c', 3), { op: 'complete', id: 'c', stage: 's1', attempts: 1, output: bytes(3), at: 10 });
      // Accepted and dropped in one commit (a branch that ends at once) leaves nothing either.
      await commit(pj, { op: 'drop', id: 'a' }, { op: 'drop', id: 'c' }, accept('d', 4), { op: 'drop', id: 'd' });
      expect([pj.status('a'), pj.status('b'), pj.status('c'), pj.status('d')]).toEqual([undefined, 'pending', 'completed', undefined]);
      expect((await pj.pendingAt('s1', 0, 10, 10)).map((t) => t.id)).toEqual(['b']);
      expect(pj.counts()).toEqual({ pending: 1, completed: 1, dead: 0 });
      const again = ((await backend.reopen?.(first)) ?? first).openPipeline('p');
      expect([again.status('a'), again.status('b'), again.status('c'), again.status('d')]).toEqual([undefined, 'pending', 'completed', undefined]);
      expect(again.counts()).toEqual({ pending: 1, completed: 1, dead: 0 });
    });
  });

  describe(`the runtime over ${backend.name}`, () => {
    const double = agent({ name: 's1', handle: (x: number) => x * 2 });
    const inc = agent({ name: 's2', handle: async (x: number) => x + 1 });

    it('gives every accepted task one outcome, delivered only after the commit that records it', async () => {
      const journal = await backend.make();
      const system = createSystem({ logger: false, journal });
      const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [double, inc] });
      const seen: string[] = [];
      pipe.onOutcome((o) => seen.push(`${o.id}:${String(journal.openPipeline('p').status(o.id))}`));
      expect(await pipe.sendMany([1, 2, 3, 4, 5])).toBe(5);
      await pipe.drain();
      expect(seen.sort()).toEqual(['p-1:completed', 'p-2:completed', 'p-3:completed', 'p-4:completed', 'p-5:completed']);
      expect(pipe.outcome('p-3')).toMatchObject({ status: 'completed', output: 7, stage: 's2' });
      await system.shutdown();
    });

    it("records a batch's start before any handler of it runs", async () => {
      const journal = await backend.make();
      const runningWhenCalled: boolean[] = [];
      const probe = agent({
        name: 's1',
        handle: (x: number, ctx) => {
          runningWhenCalled.push(journal.openPipeline('p').runningAtCrash().get('s1')?.ids.has(ctx.taskId) ?? false);
          return x;
        },
      });
      const system = createSystem({ logger: false, journal });
      const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [probe] });
      await pipe.sendMany([1, 2, 3]);
      await pipe.drain();
      expect(runningWhenCalled).toEqual([true, true, true]);
      await system.shutdown();
    });

    it('resumes tasks left pending by a killed process, paging a backlog larger than the inbox within its bound', async () => {
      const journal = await backend.make();
      const killable = killableJournal(journal);
      const blocked = agent({ name: 's1', handle: () => new Promise<number>(() => undefined) });
      const first = createSystem({ logger: false, journal: killable });
      const before = first.spawnPipeline<number, number>({ name: 'p', stages: [blocked, inc], defaults: { mailbox: { capacity: 100 } } });
      for (let i = 0; i < 20; i++) await before.send(i);
      killable.kill(); // the process dies: nothing it does from now on reaches the journal
      const again = (await backend.reopen?.(journal)) ?? journal;
      const second = createSystem({ logger: false, journal: again });
      // The new process's inbox holds 4: the backlog of 20 is paged in as room appears. Each run
      // looks at what waits in the inbox beside it.
      let peak = 0;
      const watching = agent({
        name: 's1',
        handle: (x: number) => {
          peak = Math.max(peak, after.stats().stages[0]!.queued);
          return x * 2;
        },
      });
      const after = second.spawnPipeline<number, number>({ name: 'p', stages: [watching, inc], defaults: { mailbox: { capacity: 4 } } });
      const outcomes = collect(after);
      await after.drain();
      expect(outcomes.map((o) => o.output).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, i) => i * 2 + 1));
      expect(peak).toBeGreaterThan(0); // sampled while the backlog was still paging in
      expect(peak).toBeLessThanOrEqual(4);
      await second.shutdown();
    });

    it('fans a task out to several stages and joins it once, across a killed process', async () => {
      const journal = await backend.make();
      const killable = killableJournal(journal);
      const split = agent({ name: 'split', handle: (x: number) => x, route: () => ['left', 'right'] });
      const left = agent({ name: 'left', handle: (x: number) => x * 10, route: () => null });
      const first = createSystem({ logger: false, journal: killable });
      const before = first.spawnPipeline<number, unknown>({ name: 'p', stages: [split, left, agent({ name: 'right', handle: () => new Promise<number>(() => undefined) })] });
      const early = collect(before);
      await before.sendMany([1, 2, 3]);
      while (journal.openPipeline('p').counts().pending !== 6) await new Promise((r) => setTimeout(r, 5)); // 3 tasks + 3 right branches
      killable.kill();
      const again = (await backend.reopen?.(journal)) ?? journal;
      const second = createSystem({ logger: false, journal: again });
      let leftRuns = 0;
      const after = second.spawnPipeline<number, { stage: string; output: number }[]>({
        name: 'p',
        stages: [split, agent({ name: 'left', handle: (x: number) => (leftRuns++, x * 10), route: () => null }), agent({ name: 'right', handle: (x: number) => -x, route: () => null })],
      });
      const outcomes = collect(after);
      await after.drain();
      expect(early).toEqual([]);
      expect(leftRuns).toBe(0); // every left branch had ended and been recorded before the kill
      const joined = outcomes.map((o) => [o.id, o.status === 'completed' ? [...o.output].sort((a, b) => a.stage.localeCompare(b.stage)).map((b) => b.output) : o.status]);
      expect(joined.sort()).toEqual([['p-1', [10, -1]], ['p-2', [20, -2]], ['p-3', [30, -3]]]);
      expect(again.openPipeline('p').counts()).toEqual({ pending: 0, completed: 3, dead: 0 });
      await second.shutdown();
    });

    it('charges a task that was running alone when the process died, and not the tasks beside it', async () => {
      const journal = await backend.make();
      const pj = journal.openPipeline('p');
      // As a previous process left it: 'a' was running alone (a suspect), 'b' waits behind it.
      await commit(pj, accept('a', 1), accept('b', 2), { op: 'start', stage: 's1', ids: ['a'], isolated: true });
      const system = createSystem({ logger: false, journal: (await backend.reopen?.(journal)) ?? journal });
      const pipe = system.spawnPipeline<{ id: string }, unknown>({ name: 'p', stages: [agent({ name: 's1', handle: (x: { id: string }) => x, retry: { maxAttempts: 1 } })] });
      const outcomes = collect(pipe);
      await pipe.drain();
      const byId = Object.fromEntries(outcomes.map((o) => [o.id, o]));
      expect(byId['a']).toMatchObject({ status: 'dead-lettered', error: { code: 'ERR_PROCESS_DIED' } });
      expect(byId['b']).toMatchObject({ status: 'completed', attempts: 1 });
      await system.shutdown();
    });
  });
}
