import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, sqliteJournal, type Journal, type Outcome } from '../../system/index.js';
import { encode } from '../../src/codec.js';
import { killableJournal } from '../../testkit/index.js';
import { cancelStoredTask } from '../../supervisors/operator-api.js';

// Issue 16, item 7 (and issue 14, item 3): a route that fans out to several stages works with a
// journal. Each branch is a task of its own in the journal; the task's row holds the join
// (supervisors/fan-join.ts), so a crash, a dead branch, a replay or a cancel end it once.

type Branch = { stage: string; output: unknown };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function sqlitePath(): string {
  const d = mkdtempSync(join(tmpdir(), 'baton-fan-'));
  dirs.push(d);
  return join(d, 'j.db');
}
const byStage = (o: Outcome): Branch[] => [...((o as { output: Branch[] }).output ?? [])].sort((a, b) => a.stage.localeCompare(b.stage));
const collect = (pipe: { onOutcome(fn: (o: Outcome) => void): unknown }): Outcome[] => {
  const out: Outcome[] = [];
  pipe.onOutcome((o) => out.push(o));
  return out;
};
const pendingRows = (journal: Journal): number => journal.openPipeline('p').counts().pending;

/** split -> [en, fr, de]: each branch tags its input; `runs` counts handler calls per stage. */
function fanPipeline(runs: Map<string, number>, branch: (stage: string, x: number) => unknown = (stage, x) => `${stage} ${x}`) {
  const stage = (name: string) => agent({ name, handle: (x: number) => (runs.set(name, (runs.get(name) ?? 0) + 1), branch(name, x)), route: () => null, retry: { maxAttempts: 1 } });
  return { name: 'p', stages: [agent({ name: 'split', handle: (x: number) => x, route: () => ['en', 'fr', 'de'] }), stage('en'), stage('fr'), stage('de')] };
}

describe('fan-out with a SQLite journal', () => {
  it('runs every branch once and ends each task in one outcome holding every branch output, recorded in the journal', async () => {
    const journal = sqliteJournal(sqlitePath());
    const system = createSystem({ logger: false, journal });
    const runs = new Map<string, number>();
    const pipe = system.spawnPipeline<number, Branch[]>(fanPipeline(runs));
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2, 3]);
    await pipe.drain();
    expect(outcomes).toHaveLength(3);
    for (const o of outcomes) {
      const n = Number(o.id.slice(2));
      expect(o.status).toBe('completed');
      expect(byStage(o)).toEqual([{ stage: 'de', output: `de ${n}` }, { stage: 'en', output: `en ${n}` }, { stage: 'fr', output: `fr ${n}` }]);
      expect(byStage(pipe.outcome(o.id)!)).toEqual(byStage(o));
    }
    expect([...runs.values()]).toEqual([3, 3, 3]);
    // No branch row is left: the journal holds the three tasks, nothing else.
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 3, dead: 0 });
    expect(pipe.stats()).toMatchObject({ accepted: 3, completed: 3, pending: 0 });
    await system.shutdown();
  });

  it('resumes after a crash mid fan-out: branches that ended are not run again, the others run, one outcome per task', async () => {
    const path = sqlitePath();
    const inner = sqliteJournal(path);
    const killable = killableJournal(inner);
    const first = createSystem({ logger: false, journal: killable });
    const firstRuns: string[] = [];
    const pipe1 = first.spawnPipeline<number, Branch[]>({
      name: 'p',
      stages: [
        agent({ name: 'split', handle: (x: number) => x, route: () => ['en', 'fr', 'de'] }),
        agent({ name: 'en', handle: (x: number) => (firstRuns.push(`en${x}`), `en ${x}`), route: () => null }),
        agent({ name: 'fr', handle: () => new Promise<string>(() => undefined), route: () => null }), // never ends: the process dies first
        agent({ name: 'de', handle: (x: number) => (firstRuns.push(`de${x}`), `de ${x}`), route: () => null }),
      ],
    });
    await pipe1.sendMany([1, 2]);
    while (firstRuns.length < 4) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20)); // their ends committed
    killable.kill();

    const second = createSystem({ logger: false, journal: inner });
    const runs = new Map<string, number>();
    const pipe2 = second.spawnPipeline<number, Branch[]>(fanPipeline(runs));
    const outcomes = collect(pipe2);
    await pipe2.drain();
    expect(Object.fromEntries(runs)).toEqual({ fr: 2 }); // en and de had ended before the crash
    expect(outcomes.map((o) => o.id).sort()).toEqual(['p-1', 'p-2']);
    for (const o of outcomes) {
      const n = Number(o.id.slice(2));
      expect(byStage(o)).toEqual([{ stage: 'de', output: `de ${n}` }, { stage: 'en', output: `en ${n}` }, { stage: 'fr', output: `fr ${n}` }]);
    }
    expect(inner.openPipeline('p').counts()).toEqual({ pending: 0, completed: 2, dead: 0 });
    await second.shutdown();
  });

  it('dead-letters the task at ~fan-out with the dead branch code once every branch has ended; a replay runs only the dead branch again', async () => {
    const journal = sqliteJournal(sqlitePath());
    const system = createSystem({ logger: false, journal });
    const runs = new Map<string, number>();
    let frBroken = true;
    const pipe = system.spawnPipeline<number, Branch[]>(
      fanPipeline(runs, (stage, x) => {
        if (stage === 'fr' && frBroken) throw new Error('no French model');
        return `${stage} ${x}`;
      }),
    );
    const outcomes = collect(pipe);
    await pipe.send(7, { id: 'doc' });
    await pipe.drain();
    expect(outcomes).toMatchObject([{ id: 'doc', status: 'dead-lettered', stage: '~fan-out', error: { code: 'ERR_TASK_FAILED', message: 'no French model' } }]);
    expect(pipe.deadLetters().map((o) => [o.id, o.stage, o.error?.code])).toEqual([['doc', '~fan-out', 'ERR_TASK_FAILED']]);
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 0, dead: 1 });

    frBroken = false;
    expect(pipe.replay(['doc'])).toBe(1);
    await pipe.drain();
    expect(Object.fromEntries(runs)).toEqual({ en: 1, fr: 2, de: 1 });
    expect(outcomes).toHaveLength(2);
    expect(outcomes[1]!.status).toBe('completed');
    expect(byStage(outcomes[1]!)).toEqual([{ stage: 'de', output: 'de 7' }, { stage: 'en', output: 'en 7' }, { stage: 'fr', output: 'fr 7' }]);
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 1, dead: 0 });
    await system.shutdown();
  });

  it('cancels a fanned-out task: its waiting branches leave their stages and the task ends once as ERR_CANCELLED', async () => {
    const journal = sqliteJournal(sqlitePath());
    const system = createSystem({ logger: false, journal });
    const slow = (name: string) => agent({ name, handle: async (x: number) => (await new Promise((r) => setTimeout(r, 30)), x), route: () => null });
    const pipe = system.spawnPipeline<number, unknown>({ name: 'p', stages: [agent({ name: 'split', handle: (x: number) => x, route: () => ['left', 'right'] }), slow('left'), slow('right')] });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2]);
    await new Promise((r) => setTimeout(r, 5));
    expect(pipe.cancel('p-2')).toBe(true);
    await pipe.drain();
    expect(outcomes.filter((o) => o.id === 'p-2')).toMatchObject([{ status: 'dead-lettered', error: { code: 'ERR_CANCELLED' } }]);
    expect(outcomes.filter((o) => o.id === 'p-1')).toMatchObject([{ status: 'completed' }]);
    expect(pendingRows(journal)).toBe(0);
    await system.shutdown();
  });

  it('refuses, before any branch runs, a route naming a stage it does not have, a stage twice, or a fan-out from a branch', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    let ran = 0;
    const leaf = (name: string, route: () => string | string[] | null = () => null) => agent({ name, handle: (x: number) => (ran++, x), route });
    const pipe = system.spawnPipeline<number, unknown>({
      name: 'p',
      stages: [
        agent({ name: 'split', handle: (x: number) => x, route: (x: number) => (x === 1 ? ['a', 'nowhere'] : x === 2 ? ['a', 'a'] : ['a', 'again']) }),
        leaf('a'),
        leaf('again', () => ['a', 'b']),
        leaf('b'),
      ],
    });
    const outcomes = collect(pipe);
    await pipe.sendMany([1, 2, 3]);
    await pipe.drain();
    const codes = Object.fromEntries(outcomes.map((o) => [o.id, o.status === 'dead-lettered' ? o.error.code : o.status]));
    expect(codes).toEqual({ 'p-1': 'ERR_UNKNOWN_ADDRESS', 'p-2': 'ERR_INVALID_OPTION', 'p-3': 'ERR_INVALID_OPTION' });
    expect(ran).toBe(2); // only task 3's two branches ran (a, then 'again', whose route was refused)
    await system.shutdown();
  });

  it('lets the CLI cancel a fanned-out task on a journal no system has open: its branches go with it; a branch id is refused', async () => {
    const journal = memoryJournal();
    const killable = killableJournal(journal);
    const first = createSystem({ logger: false, journal: killable });
    const pipe = first.spawnPipeline<number, unknown>({ name: 'p', stages: [agent({ name: 'split', handle: (x: number) => x, route: () => ['a', 'b'] }), agent({ name: 'a', handle: () => new Promise(() => undefined) }), agent({ name: 'b', handle: () => new Promise(() => undefined) })] });
    await pipe.send(1, { id: 'doc' });
    while (journal.openPipeline('p').counts().pending !== 3) await new Promise((r) => setTimeout(r, 2));
    killable.kill();
    const pj = journal.openPipeline('p');
    expect(() => cancelStoredTask(pj, 'doc#fan1', 'no', 1)).toThrow(/branch of a fanned-out task; cancel the task itself \(doc\)/);
    expect(cancelStoredTask(pj, 'doc', 'operator', 1)).toBe(true);
    expect(pj.counts()).toEqual({ pending: 0, completed: 0, dead: 1 });
    expect(pj.outcome('doc')).toMatchObject({ status: 'dead', code: 'ERR_CANCELLED' });
  });

  it('refuses a send whose id has the form of a branch id', async () => {
    const system = createSystem({ logger: false, journal: memoryJournal() });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    const err = await pipe.send(1, { id: 'doc#fan2' }).catch((e: unknown) => e);
    expect(isBatonError(err) && err.code).toBe('ERR_INVALID_OPTION');
    expect((err as Error).message).toContain("'#fan<n>'");
    await system.shutdown();
  });
});

describe('fan-out recovery from a partial commit (a backend without multi-key transactions, such as NATS)', () => {
  const input = encode(5, 'test');
  const join = (ended: unknown[]) => encode([1, 'split', ['en', 'fr'], input, ended], 'test');

  it('re-creates a branch that has neither a row nor a recorded end', async () => {
    const journal = memoryJournal();
    const pj = journal.openPipeline('p');
    pj.commit([
      { op: 'accept', id: 'doc', seq: 1, key: undefined, stage: 'split', payload: input },
      { op: 'move', id: 'doc', stage: '~fan-out', payload: join([]) },
      { op: 'accept', id: 'doc#fan0', seq: 1, key: undefined, stage: 'en', payload: input }, // fr's row never landed
    ]);
    const system = createSystem({ logger: false, journal });
    const runs = new Map<string, number>();
    const pipe = system.spawnPipeline<number, Branch[]>(fanPipeline(runs));
    const outcomes = collect(pipe);
    await pipe.drain();
    expect(Object.fromEntries(runs)).toEqual({ en: 1, fr: 1 });
    expect(outcomes).toHaveLength(1);
    expect(byStage(outcomes[0]!)).toEqual([{ stage: 'en', output: 'en 5' }, { stage: 'fr', output: 'fr 5' }]);
    await system.shutdown();
  });

  it('drops a branch row whose end is already recorded, and finishes a join whose branches have all ended', async () => {
    const journal = memoryJournal();
    const pj = journal.openPipeline('p');
    pj.commit([
      { op: 'accept', id: 'a', seq: 1, key: undefined, stage: 'split', payload: input },
      { op: 'move', id: 'a', stage: '~fan-out', payload: join([[0, 'en', 1, encode('en 5', 't')]]) },
      { op: 'accept', id: 'a#fan0', seq: 1, key: undefined, stage: 'en', payload: input }, // its drop never landed
      { op: 'accept', id: 'a#fan1', seq: 1, key: undefined, stage: 'fr', payload: input },
      { op: 'accept', id: 'b', seq: 2, key: undefined, stage: 'split', payload: input },
      { op: 'move', id: 'b', stage: '~fan-out', payload: join([[0, 'en', 1, encode('en 5', 't')], [1, 'fr', 1, encode('fr 5', 't')]]) }, // its completion never landed
    ]);
    const system = createSystem({ logger: false, journal });
    const runs = new Map<string, number>();
    const pipe = system.spawnPipeline<number, Branch[]>(fanPipeline(runs));
    const outcomes = collect(pipe);
    await pipe.drain();
    expect(Object.fromEntries(runs)).toEqual({ fr: 1 });
    expect(outcomes.map((o) => [o.id, o.status]).sort()).toEqual([['a', 'completed'], ['b', 'completed']]);
    expect(pipe.stats()).toMatchObject({ pending: 0 });
    expect(pj.counts()).toEqual({ pending: 0, completed: 2, dead: 0 });
    await system.shutdown();
  });

  it('dead-letters a task whose fan-out record cannot be read, and drops its branches', async () => {
    const journal = memoryJournal();
    const pj = journal.openPipeline('p');
    pj.commit([
      { op: 'accept', id: 'a', seq: 1, key: undefined, stage: 'split', payload: input },
      { op: 'move', id: 'a', stage: '~fan-out', payload: encode({ not: 'a join' }, 't') },
      { op: 'accept', id: 'a#fan0', seq: 1, key: undefined, stage: 'en', payload: input },
    ]);
    const system = createSystem({ logger: false, journal });
    const runs = new Map<string, number>();
    const pipe = system.spawnPipeline<number, Branch[]>(fanPipeline(runs));
    const outcomes = collect(pipe);
    await pipe.drain();
    expect(outcomes).toMatchObject([{ id: 'a', status: 'dead-lettered', error: { code: 'ERR_JOURNAL_CORRUPT' } }]);
    expect(runs.size).toBe(0);
    expect(pj.counts()).toEqual({ pending: 0, completed: 0, dead: 1 });
    await system.shutdown();
  });
});

describe('fan-out with a journal: operator actions and restarts', () => {
  const split = agent({ name: 'split', handle: (x: number) => x, route: () => ['a', 'b'] });
  it('cancel of a branch id ends the task once, dead, after the other branch ends', async () => {
    const journal = memoryJournal();
    const sys = createSystem({ logger: false, journal });
    const p = sys.spawnPipeline<number, unknown>({ name: 'p', stages: [split, agent({ name: 'a', handle: async (x: number) => (await new Promise((r) => setTimeout(r, 20)), x), route: () => null }), agent({ name: 'b', handle: async (x: number) => (await new Promise((r) => setTimeout(r, 20)), x), route: () => null })] });
    const outs: Outcome[] = [];
    p.onOutcome((o) => outs.push(o));
    await p.send(1, { id: 'x' });
    await new Promise((r) => setTimeout(r, 5));
    expect(p.stats().pending).toBe(1);
    expect(p.cancel('x#fan1')).toBe(true);
    await p.drain();
    expect(outs.map((o) => [o.id, o.status])).toEqual([['x', 'dead-lettered']]);
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 0, dead: 1 });
    await sys.shutdown();
  });
  it('a clean stop mid fan-out and a respawn on the same journal end the task once', async () => {
    const journal = memoryJournal();
    const sys = createSystem({ logger: false, journal });
    const slow = (n: string) => agent({ name: n, handle: async (x: number) => (await new Promise((r) => setTimeout(r, 50)), `${n}${x}`), route: () => null });
    const p = sys.spawnPipeline<number, unknown>({ name: 'p', stages: [split, slow('a'), slow('b')] });
    await p.sendMany([1, 2, 3]);
    await new Promise((r) => setTimeout(r, 10));
    await sys.shutdown({ drainMs: 0 });
    const sys2 = createSystem({ logger: false, journal });
    const p2 = sys2.spawnPipeline<number, unknown>({ name: 'p', stages: [split, slow('a'), slow('b')] });
    const outs: Outcome[] = [];
    p2.onOutcome((o) => outs.push(o));
    await p2.drain();
    expect(outs.map((o) => o.id).sort()).toEqual(['p-1', 'p-2', 'p-3']);
    expect(outs.every((o) => o.status === 'completed')).toBe(true);
    expect(p2.stats().pending).toBe(0);
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 3, dead: 0 });
    await sys2.shutdown();
  });
  it('replay of a fanned-out dead letter after a restart runs only its dead branch', async () => {
    const journal = memoryJournal();
    let broken = true;
    const stages = () => [split, agent({ name: 'a', handle: (x: number) => `a${x}`, route: () => null }), agent({ name: 'b', retry: { maxAttempts: 1 }, handle: (x: number) => { if (broken) throw new Error('b down'); return `b${x}`; }, route: () => null })];
    const sys = createSystem({ logger: false, journal });
    const p = sys.spawnPipeline<number, unknown>({ name: 'p', stages: stages() });
    await p.send(1, { id: 'x' });
    await p.drain();
    await sys.shutdown();
    broken = false;
    const sys2 = createSystem({ logger: false, journal });
    const p2 = sys2.spawnPipeline<number, unknown>({ name: 'p', stages: stages() });
    const outs: Outcome[] = [];
    p2.onOutcome((o) => outs.push(o));
    expect(p2.replay(['x'])).toBe(1);
    await p2.drain();
    expect(outs).toMatchObject([{ id: 'x', status: 'completed' }]);
    expect((outs[0] as { output: { stage: string }[] }).output.map((o) => o.stage).sort()).toEqual(['a', 'b']);
    await sys2.shutdown();
  });
});
