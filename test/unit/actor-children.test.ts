import { describe, expect, it } from 'vitest';
import { actor, isBatonError, oneForOne, type ActorContext, type ActorRef, type DeadLetter } from '../../system/index.js';
import { settle, testSystem } from '../support/helpers.js';

type ParentMsg = { spawn: string } | { to: string; msg: string } | 'crash' | 'stop';

/**
 * A parent that spawns a worker 'w' in init (and more on request) and forwards messages to its
 * children. Counts starts of the parent and of each child by path.
 */
function family(options: { maxChildRestarts?: number; childRestart?: 'permanent' | 'transient' | 'temporary' } = {}) {
  const t = testSystem();
  const starts: Record<string, number> = {};
  const handled: string[] = [];
  const dead: DeadLetter[] = [];
  t.system.deadLetters.on((d) => dead.push(d));
  const worker = actor<string, null>({
    init: (ctx) => ((starts[ctx.path] = (starts[ctx.path] ?? 0) + 1), null),
    receive: (_s, m, ctx) => {
      if (m === 'crash') throw new Error(`${ctx.path} crashed`);
      if (m === 'stop') return ctx.stop();
      handled.push(`${ctx.path}:${m}`);
    },
  });
  const contexts: ActorContext<ParentMsg>[] = [];
  const parent = actor<ParentMsg, Map<string, ActorRef<string>>>({
    supervision: oneForOne({ maxRestarts: options.maxChildRestarts ?? 3, withinMs: 60_000 }),
    init: (ctx) => {
      contexts.push(ctx);
      starts[ctx.path] = (starts[ctx.path] ?? 0) + 1;
      return new Map([['w', ctx.spawn(worker, { name: 'w', restart: options.childRestart ?? 'permanent' })]]);
    },
    receive: (kids, m, ctx) => {
      if (m === 'crash') throw new Error('parent crashed');
      if (m === 'stop') return ctx.stop();
      if ('spawn' in m) kids.set(m.spawn, ctx.spawn(worker, { name: m.spawn }));
      else kids.get(m.to)?.tell(m.msg);
    },
  });
  const sup = t.system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 10 }), children: [{ name: 'p', actor: parent }] });
  return { ...t, sup, starts, handled, dead, contexts, worker, p: sup.child<ParentMsg>('p') };
}

describe('an actor that spawns children (ctx.spawn)', () => {
  it("puts each child at '<parent>/<name>', reachable through its ref and through the system", async () => {
    const { system, p, handled } = family();
    p.tell({ to: 'w', msg: 'via parent' });
    system.tell('sup/p/w', 'via system');
    await settle();
    expect([...handled].sort()).toEqual(['sup/p/w:via parent', 'sup/p/w:via system']);
  });

  it("restarts a crashed child under the actor's supervision strategy and leaves the actor alone", async () => {
    const { p, starts, handled } = family();
    p.tell({ to: 'w', msg: 'crash' });
    p.tell({ to: 'w', msg: 'after' });
    await settle();
    expect(starts).toEqual({ 'sup/p': 1, 'sup/p/w': 2 });
    expect(handled).toEqual(['sup/p/w:after']);
  });

  it('fails the actor when a child goes past the strategy intensity (escalation); the new incarnation spawns a fresh child', async () => {
    const { p, starts, events } = family({ maxChildRestarts: 1 });
    p.tell({ to: 'w', msg: 'crash' }); // restart 1: within the intensity
    await settle();
    p.tell({ to: 'w', msg: 'crash' }); // restart 2: past it, so the parent fails
    await settle();
    expect(starts['sup/p']).toBe(2);
    expect(starts['sup/p/w']).toBe(3); // first, the one restart, and the new incarnation's
    expect(events.some((e) => e.type === 'crashed' && e.path === 'sup/p' && /more than 1 restarts/.test(e.error.message))).toBe(true);
  });

  it("stops the children of an incarnation that ends: a restart of the actor dead-letters the old child's queue", async () => {
    const { system, p, starts, dead } = family();
    p.tell({ spawn: 'extra' });
    await settle();
    const extra = system.lookup<string>('sup/p/extra');
    p.tell('crash');
    await settle();
    expect(starts['sup/p']).toBe(2);
    expect(extra.tell('to the old child')).toBe('stopped');
    expect(dead.map((d) => d.message)).toContain('to the old child');
    expect(() => system.lookup('sup/p/extra')).toThrow(/no actor/); // the new incarnation spawned only 'w'
    expect(system.lookup('sup/p/w')).toBeDefined();
  });

  it('stops its children when it ends, and says so once per path', async () => {
    const { system, sup, events } = family();
    await sup.terminateChild('p');
    expect(() => system.lookup('sup/p/w')).toThrow(/no actor/);
    const stopped = events.filter((e) => e.type === 'stopped').map((e) => e.path);
    expect(stopped).toEqual(['sup/p/w', 'sup/p']);
  });

  it('refuses a second live child of the same name with ERR_DUPLICATE_NAME, but takes the name of a child that stopped', async () => {
    const { p, events, handled } = family({ childRestart: 'transient' });
    p.tell({ spawn: 'w' });
    await settle();
    expect(events.some((e) => e.type === 'crashed' && e.path === 'sup/p' && /already has a live child 'w'/.test(e.error.message))).toBe(true);
    p.tell({ to: 'w', msg: 'stop' }); // the new incarnation's transient 'w' stops for good
    await settle();
    p.tell({ spawn: 'w' });
    p.tell({ to: 'w', msg: 'reborn' });
    await settle();
    expect(handled).toEqual(['sup/p/w:reborn']);
  });

  it('throws ERR_STOPPED when a replaced incarnation spawns, and ERR_INVALID_OPTION for bad options', async () => {
    const { p, contexts, worker } = family();
    p.tell('crash');
    await settle();
    const stale = contexts[0]!;
    const current = contexts[1]!;
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return isBatonError(err) ? err.code : 'other';
      }
      return 'none';
    };
    expect(code(() => stale.spawn(worker, { name: 'late' }))).toBe('ERR_STOPPED');
    expect(code(() => current.spawn(worker, { name: '' }))).toBe('ERR_INVALID_OPTION');
    expect(code(() => current.spawn(worker, { name: 'x', restart: 'always' as never }))).toBe('ERR_INVALID_OPTION');
    expect(code(() => current.spawn(worker, { name: 'x', shutdwnMs: 1 } as never))).toBe('ERR_INVALID_OPTION');
    expect(code(() => current.spawn({ receive: () => {} } as never, { name: 'x' }))).toBe('ERR_INVALID_OPTION');
    expect(code(() => current.spawn(worker, null as never))).toBe('ERR_INVALID_OPTION');
  });

  it("refuses a supervision option that is not a strategy, naming it", () => {
    expect(() => actor({ receive: () => {}, supervision: { kind: 'one-for-one' } as never })).toThrow(/supervision must be a strategy/);
  });
});
