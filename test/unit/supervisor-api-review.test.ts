import { describe, expect, it } from 'vitest';
import { actor, isBatonError, oneForOne, type ActorContext, type ActorRef, type DeadLetter } from '../../system/index.js';
import { settle, testSystem } from '../support/helpers.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try { fn(); } catch (err) { return isBatonError(err) ? err.code : 'not a BatonError'; }
  return undefined;
};
const noop = () => actor<string, null>({ init: () => null, receive: () => {} });
/** A child that holds every message for `ms` real ms. */
const slow = (ms: number, done: string[] = []) =>
  actor({ receive: async (_s: undefined, m: string) => { await new Promise((r) => setTimeout(r, ms)); done.push(m); } });

describe('the supervisor API under an adversarial user (review of item 21)', () => {
  it('a startChild refused for a bad nested spec leaves no registered child behind (B1)', async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const handled: string[] = [];
    const good = actor<string, null>({ init: () => null, receive: (_s, m) => void handled.push(m) });
    const sup = system.spawnSupervisor({ name: 'sup', children: [] });
    expect(codeOf(() => sup.startChild({ name: 'sub', supervisor: { children: [{ name: 'ok', actor: good }, { name: 'bad', actor: {} as never }] } }))).toBe('ERR_INVALID_OPTION');
    // Nothing of the refused subtree may stay registered (spawnSupervisor cleans up; startChild does not):
    expect(codeOf(() => system.supervisor('sup/sub'))).toBe('ERR_UNKNOWN_ADDRESS');
    const d = system.tell('sup/sub/ok', 'hello');
    await settle();
    await system.shutdown();
    // accepted => handled or dead-lettered
    expect([d, handled.length + dead.length]).toEqual(['stopped', 1]);
  });

  it('a corrected retry of a refused startChild succeeds (B1)', () => {
    const { system } = testSystem();
    const sup = system.spawnSupervisor({ name: 'sup', children: [] });
    codeOf(() => sup.startChild({ name: 'sub', supervisor: { children: [{ name: 'ok', actor: noop() }, { name: 'bad', actor: {} as never }] } }));
    expect(codeOf(() => sup.startChild({ name: 'sub', supervisor: { children: [{ name: 'ok', actor: noop() }] } }))).toBe(undefined);
  });

  it('a receive whose ctx.spawn restarts its own actor does not write into the new incarnation (B2)', async () => {
    const { system } = testSystem();
    let childInits = 0;
    const flaky = actor<string, null>({ init: () => { if (++childInits <= 4) throw new Error('child init'); return null; }, receive: () => {} });
    const seen: string[] = [];
    const parent = actor<string, string>({
      supervision: oneForOne({ maxRestarts: 3 }),
      init: () => 'fresh',
      receive: (state, m, ctx) => {
        if (m === 'spawn') { ctx.spawn(flaky, { name: 'kid' }); return 'stale'; }
        seen.push(state);
      },
    });
    const sup = system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 5 }), children: [{ name: 'p', actor: parent }] });
    sup.child<string>('p').tell('spawn'); // kid fails 4x -> escalates -> p restarts (new state 'fresh')
    await settle();
    sup.child<string>('p').tell('look');
    await settle();
    expect(seen).toEqual(['fresh']);
  });

  it('an init whose ctx.spawn restarts its own actor leaves the new incarnation\'s state (B2)', async () => {
    const { system } = testSystem();
    let childInits = 0;
    const flaky = actor<string, null>({ init: () => { if (++childInits <= 4) throw new Error('child init'); return null; }, receive: () => {} });
    let parentInits = 0;
    const refs: ActorRef<string>[] = [];
    const parent = actor<string, { n: number; kid: ActorRef<string> }>({
      init: (ctx) => { const n = ++parentInits; const kid = ctx.spawn(flaky, { name: 'kid' }); refs.push(kid); return { n, kid }; },
      receive: (s, m) => void s.kid.tell(`${s.n}:${m}`),
    });
    const sup = system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 5 }), children: [{ name: 'p', actor: parent }] });
    sup.child<string>('p').tell('hi');
    await settle();
    expect(parentInits).toBe(2);
    // The live state must be incarnation 2's, holding the live kid.
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    sup.child<string>('p').tell('again');
    await settle();
    expect(dead.map((d) => d.message)).toEqual([]);
  });

  it('a second terminateChild resolves only when the child has ended (B3)', async () => {
    const { system } = testSystem();
    const sup = system.spawnSupervisor({ name: 'sup', children: [{ name: 'slow', actor: slow(200), shutdownMs: 5_000 }] });
    const ref = sup.child<string>('slow');
    ref.tell('job');
    await settle();
    const first = sup.terminateChild('slow');
    await sup.terminateChild('slow'); // "Resolves when it has ended"
    expect(ref.tell('probe')).toBe('stopped');
    await first;
  });

  it('deleteChild while a terminateChild is stopping the child is refused, and removes nothing else (B4)', async () => {
    const { system } = testSystem();
    const sup = system.spawnSupervisor({
      name: 'sup',
      children: [{ name: 't', actor: slow(20), restart: 'temporary' }, { name: 'a', actor: noop() }, { name: 'b', actor: noop() }],
    });
    sup.child<string>('t').tell('job');
    await settle();
    const stopping = sup.terminateChild('t');
    expect(sup.children().map((c) => c.status)).toEqual(['stopping', 'running', 'running']);
    expect(codeOf(() => sup.deleteChild('t'))).toBe('ERR_CHILD_RUNNING');
    await stopping;
    // The temporary child's spec went with it; the siblings stay (a splice at index -1 took 'b').
    expect(sup.children().map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('a subtree that took over a stopped subtree\'s name is not unregistered by the old one\'s end (B5)', async () => {
    const { system } = testSystem();
    const sup = system.spawnSupervisor({ name: 'sup', children: [{ name: 'sub', supervisor: { children: [{ name: 'x', actor: slow(50) }] } }] });
    system.tell('sup/sub/x', 'job');
    await settle();
    const stopping = sup.terminateChild('sub');
    expect(codeOf(() => sup.deleteChild('sub'))).toBe('ERR_CHILD_RUNNING');
    expect(codeOf(() => sup.startChild({ name: 'sub', supervisor: { children: [] } }))).toBe('ERR_DUPLICATE_NAME');
    await stopping;
    sup.deleteChild('sub');
    sup.startChild({ name: 'sub', supervisor: { children: [{ name: 'y', actor: noop() }] } });
    let told = false;
    system.watch('sup/sub', () => (told = true));
    await settle();
    expect(told).toBe(false);
    expect(sup.supervisor('sub').path).toBe('sup/sub');
    expect(system.tell('sup/sub/y', 'hi')).toBe('enqueued');
  });

  it('restartChild while a terminateChild is stopping the child says ERR_CHILD_RUNNING, then restarts it once stopped (B6)', async () => {
    const { system } = testSystem();
    const done: string[] = [];
    const sup = system.spawnSupervisor({ name: 'sup', children: [{ name: 's', actor: slow(50, done) }] });
    system.tell('sup/s', 'job');
    await settle();
    const stopping = sup.terminateChild('s');
    expect(sup.children()[0]?.status).toBe('stopping');
    let err: unknown;
    try { sup.restartChild('s'); } catch (e) { err = e; }
    expect(isBatonError(err) && err.code).toBe('ERR_CHILD_RUNNING');
    expect(String((err as Error).message)).toContain('await that first');
    await stopping;
    expect(done).toEqual(['job']);
    expect(sup.children()[0]?.status).toBe('terminated');
    sup.restartChild('s');
    expect(sup.children()[0]?.status).toBe('running');
    expect(system.tell('sup/s', 'again')).toBe('enqueued');
  });

  it('system.shutdown during a terminateChild gives the child the rest of its shutdownMs (B7)', async () => {
    const { system } = testSystem();
    const done: string[] = [];
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const sup = system.spawnSupervisor({ name: 'sup', children: [{ name: 's', actor: slow(100, done), shutdownMs: 5_000 }] });
    sup.child<string>('s').tell('job');
    await settle();
    const stopping = sup.terminateChild('s');
    await system.shutdown();
    await stopping;
    await new Promise((r) => setTimeout(r, 150));
    // Either it was allowed to finish within its 5 s (done=['job'], no dead letter) ...

    expect(dead.map((d) => d.message)).toEqual([]);
  });

  it('a child spec with a misspelt option is refused (B8)', () => {
    const { system } = testSystem();
    const sup = system.spawnSupervisor({ name: 'sup', children: [] });
    expect(codeOf(() => sup.startChild({ name: 'c', actor: noop(), shutdwnMs: 0 } as never))).toBe('ERR_INVALID_OPTION');
  });

  it('a subtree child\'s name is checked like any name (B8)', () => {
    const { system } = testSystem();
    const sup = system.spawnSupervisor({ name: 'sup', children: [] });
    expect(codeOf(() => sup.startChild({ name: 'a/b', supervisor: { children: [] } }))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => sup.startChild({ supervisor: { children: [] } } as never))).toBe('ERR_INVALID_OPTION');

  });

  it('a shutdownMs a timer cannot hold (above 2^31 - 1 ms) is refused, and Infinity is kept (B9)', async () => {
    const { system } = testSystem();
    const done: string[] = [];
    const sup = system.spawnSupervisor({ name: 'sup', children: [] });
    for (const bad of [2 ** 31, -1, Number.NaN, '5']) {
      expect(codeOf(() => sup.startChild({ name: 'c', actor: noop(), shutdownMs: bad as number }))).toBe('ERR_INVALID_OPTION');
    }
    expect(codeOf(() => system.spawn(noop(), { name: 'r', shutdownMs: 2 ** 31 }))).toBe('ERR_INVALID_OPTION');
    sup.startChild({ name: 's', actor: slow(50, done), shutdownMs: Infinity });
    sup.child<string>('s').tell('job');
    await settle();
    await sup.terminateChild('s');
    expect(done).toEqual(['job']);
  });

  it('an ended incarnation that throws does not crash the new one (B2)', async () => {
    const { system, events } = testSystem();
    let childInits = 0;
    const flaky = actor<string, null>({ init: () => { if (++childInits <= 4) throw new Error('child init'); return null; }, receive: () => {} });
    let pInits = 0;
    const parent = actor<string, null>({
      init: () => (pInits++, null),
      receive: (_s, _m, ctx) => { ctx.spawn(flaky, { name: 'kid' }); ctx.spawn(noop(), { name: 'other' }); },
    });
    const sup = system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 5 }), children: [{ name: 'p', actor: parent }] });
    sup.child<string>('p').tell('go');
    await settle();
    expect(pInits).toBe(2);
    expect(events.filter((e) => e.type === 'crashed' && e.path === 'sup/p').length).toBe(1);
  });
});
