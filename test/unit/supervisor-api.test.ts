import { describe, expect, it } from 'vitest';
import { actor, backoff, isBatonError, oneForOne, restForOne, type ActorContext, type ChildSpec, type DeadLetter } from '../../system/index.js';
import { settle, testSystem } from '../support/helpers.js';

/** An actor that counts its starts under `name` and records what it handled; 'crash' throws. */
function counted(starts: Record<string, number>, handled: string[], name: string) {
  return actor<string, null>({
    init: () => ((starts[name] = (starts[name] ?? 0) + 1), null),
    receive: (_s, m) => {
      if (m === 'crash') throw new Error(`${name} crashed`);
      handled.push(`${name}:${m}`);
    },
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isBatonError(err) ? err.code : 'not a BatonError';
  }
  return undefined;
}

async function rejectionCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isBatonError(err) ? err.code : 'not a BatonError';
  }
  return undefined;
}

function tree() {
  const t = testSystem();
  const starts: Record<string, number> = {};
  const handled: string[] = [];
  const dead: DeadLetter[] = [];
  t.system.deadLetters.on((d) => dead.push(d));
  const spec = (name: string, extra: Partial<ChildSpec> = {}): ChildSpec => ({ name, actor: counted(starts, handled, name), ...extra }) as ChildSpec;
  const sup = t.system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 5 }), children: [spec('a'), spec('b')] });
  return { ...t, sup, starts, handled, dead, spec };
}

describe('a running supervisor: startChild', () => {
  it('adds the child at the end of the start order, starts it, and its address takes messages', async () => {
    const { system, sup, starts, handled, spec } = tree();
    sup.startChild(spec('c'));
    expect(starts.c).toBe(1);
    expect(sup.children().map((c) => c.name)).toEqual(['a', 'b', 'c']);
    system.tell('sup/c', 'hello');
    await settle();
    expect(handled).toEqual(['c:hello']);
  });

  it('refuses a name the supervisor already has with ERR_DUPLICATE_NAME, and a bad spec with ERR_INVALID_OPTION', () => {
    const { sup, spec } = tree();
    expect(codeOf(() => sup.startChild(spec('a')))).toBe('ERR_DUPLICATE_NAME');
    expect(codeOf(() => sup.startChild({ name: 'x', actor: { receive: () => {} } } as never))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => sup.startChild({ name: 'x', actor: counted({}, [], 'x'), restart: 'sometimes' } as never))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => sup.startChild({ name: 'x', actor: counted({}, [], 'x'), shutdownMs: -1 }))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => sup.startChild({ name: 'bad/name', actor: counted({}, [], 'x') }))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => sup.startChild(null as never))).toBe('ERR_INVALID_OPTION');
    expect(sup.children().map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('throws ERR_START_FAILED when the new child keeps failing in init until the supervisor gives up', () => {
    const { system, sup } = tree();
    const broken = actor<string, null>({ init: () => { throw new Error('no config'); }, receive: () => {} });
    expect(codeOf(() => sup.startChild({ name: 'broken', actor: broken }))).toBe('ERR_START_FAILED');
    expect(codeOf(() => system.supervisor('sup'))).toBe('ERR_UNKNOWN_ADDRESS');
  });

  it('throws ERR_STOPPED on a supervisor that has ended', async () => {
    const { system, sup, spec } = tree();
    await system.shutdown();
    expect(codeOf(() => sup.startChild(spec('c')))).toBe('ERR_STOPPED');
  });
});

describe('a running supervisor: terminateChild, restartChild, deleteChild', () => {
  it('terminateChild ends a permanent child without restarting it; its queued messages become dead letters', async () => {
    const { system, sup, starts, dead } = tree();
    const b = sup.child<string>('b');
    await sup.terminateChild('b');
    expect(starts.b).toBe(1);
    expect(b.tell('late')).toBe('stopped');
    expect(dead.map((d) => d.message)).toEqual(['late']);
    expect(codeOf(() => system.lookup('sup/b'))).toBe('ERR_UNKNOWN_ADDRESS');
    expect(sup.children().find((c) => c.name === 'b')?.status).toBe('terminated');
    expect(sup.countChildren()).toEqual({ specs: 2, active: 1, supervisors: 0, workers: 2 });
  });

  it('restartChild starts a terminated child again from its spec, with a fresh init and a working address', async () => {
    const { system, sup, starts, handled } = tree();
    await sup.terminateChild('b');
    sup.restartChild('b');
    expect(starts.b).toBe(2);
    system.tell('sup/b', 'again');
    await settle();
    expect(handled).toEqual(['b:again']);
    expect(sup.children().map((c) => [c.name, c.status])).toEqual([['a', 'running'], ['b', 'running']]);
  });

  it('deleteChild forgets a terminated child, after which its name can be started anew', async () => {
    const { sup, spec } = tree();
    await sup.terminateChild('a');
    sup.deleteChild('a');
    expect(sup.children().map((c) => c.name)).toEqual(['b']);
    expect(codeOf(() => sup.restartChild('a'))).toBe('ERR_UNKNOWN_ADDRESS');
    sup.startChild(spec('a'));
    expect(sup.children().map((c) => c.name)).toEqual(['b', 'a']);
  });

  it('restartChild and deleteChild of a running child throw ERR_CHILD_RUNNING; unknown names throw ERR_UNKNOWN_ADDRESS', async () => {
    const { sup } = tree();
    expect(codeOf(() => sup.restartChild('a'))).toBe('ERR_CHILD_RUNNING');
    expect(codeOf(() => sup.deleteChild('a'))).toBe('ERR_CHILD_RUNNING');
    expect(codeOf(() => sup.restartChild('zz'))).toBe('ERR_UNKNOWN_ADDRESS');
    expect(codeOf(() => sup.deleteChild('zz'))).toBe('ERR_UNKNOWN_ADDRESS');
    expect(await rejectionCode(sup.terminateChild('zz'))).toBe('ERR_UNKNOWN_ADDRESS');
  });

  it('terminateChild of a temporary child deletes its spec, as OTP does', async () => {
    const { sup, spec } = tree();
    sup.startChild(spec('t', { restart: 'temporary' }));
    await sup.terminateChild('t');
    expect(sup.children().map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('a temporary child that crashes is removed from the children, a transient one that stopped stays as terminated', async () => {
    const { sup, spec } = tree();
    sup.startChild(spec('t', { restart: 'temporary' }));
    sup.startChild({ name: 'q', restart: 'transient', actor: actor({ receive: (_s: undefined, _m: string, ctx: ActorContext<string>) => ctx.stop() }) });
    sup.child<string>('t').tell('crash');
    sup.child<string>('q').tell('stop');
    await settle();
    expect(sup.children().map((c) => [c.name, c.status])).toEqual([['a', 'running'], ['b', 'running'], ['q', 'terminated']]);
  });

  it('a terminated child stays down when a rest-for-one restart sweeps past it', async () => {
    const t = testSystem();
    const starts: Record<string, number> = {};
    const sup = t.system.spawnSupervisor({
      name: 'sup',
      strategy: restForOne(),
      children: ['a', 'b', 'c'].map((n) => ({ name: n, actor: counted(starts, [], n) })),
    });
    await sup.terminateChild('b');
    sup.child<string>('a').tell('crash');
    await settle();
    expect(starts).toEqual({ a: 2, b: 1, c: 2 });
    expect(sup.children().map((c) => c.status)).toEqual(['running', 'terminated', 'running']);
  });

  it('a child waiting out its restart backoff shows as restarting, and terminateChild then keeps it down', async () => {
    const { system, clock } = testSystem();
    const starts: Record<string, number> = {};
    const sup = system.spawnSupervisor({
      name: 'sup',
      strategy: oneForOne({ maxRestarts: 5, backoff: backoff({ minMs: 1_000, maxMs: 1_000, jitter: 0 }) }),
      children: [{ name: 'a', actor: counted(starts, [], 'a') }],
    });
    sup.child<string>('a').tell('crash');
    await settle();
    expect(sup.children()[0]?.status).toBe('restarting');
    await sup.terminateChild('a');
    await clock.advance(5_000);
    await settle();
    expect(starts.a).toBe(1);
    expect(sup.children()[0]?.status).toBe('terminated');
  });

  it('a subtree is reached with supervisor(name); terminating it stops its children last-started first', async () => {
    const t = testSystem();
    const sup = t.system.spawnSupervisor({
      name: 'sup',
      children: [{ name: 'sub', supervisor: { children: ['x', 'y'].map((n) => ({ name: n, actor: counted({}, [], n) })) } }],
    });
    expect(sup.supervisor('sub').children().map((c) => c.path)).toEqual(['sup/sub/x', 'sup/sub/y']);
    expect(sup.children()[0]).toMatchObject({ kind: 'supervisor', shutdownMs: Infinity });
    await sup.terminateChild('sub');
    const stopped = t.events.filter((e) => e.type === 'stopped').map((e) => e.path);
    expect(stopped).toEqual(['sup/sub/y', 'sup/sub/x', 'sup/sub']);
    expect(codeOf(() => sup.supervisor('sub'))).toBe('ERR_UNKNOWN_ADDRESS');
    sup.restartChild('sub');
    expect(sup.supervisor('sub').countChildren()).toEqual({ specs: 2, active: 2, supervisors: 0, workers: 2 });
  });
});

describe("a child's shutdownMs", () => {
  /** A child whose receive takes `workMs` of real time; returns what finished and what became a dead letter. */
  async function stopWhileBusy(shutdownMs: number, workMs: number) {
    const t = testSystem();
    const finished: string[] = [];
    const dead: DeadLetter[] = [];
    t.system.deadLetters.on((d) => dead.push(d));
    const slow = actor({ receive: async (_s: undefined, m: string) => { await new Promise((r) => setTimeout(r, workMs)); finished.push(m); } });
    const sup = t.system.spawnSupervisor({ name: 'sup', children: [{ name: 'slow', actor: slow, shutdownMs }] });
    sup.child<string>('slow').tell('job');
    sup.child<string>('slow').tell('queued');
    await settle();
    const began = Date.now();
    await sup.terminateChild('slow');
    return { finished, dead: dead.map((d) => [d.message, d.reason]), tookMs: Date.now() - began };
  }

  it('lets the message in hand finish when it does so within the timeout; what is queued becomes a dead letter', async () => {
    const r = await stopWhileBusy(2_000, 30);
    expect(r.finished).toEqual(['job']);
    expect(r.dead).toEqual([['queued', 'stopped']]);
  });

  it('ends the child when the timeout runs out: the message in hand becomes a dead letter too', async () => {
    const r = await stopWhileBusy(20, 10_000);
    expect(r.finished).toEqual([]);
    expect(r.dead).toEqual([['job', 'stopped'], ['queued', 'stopped']]);
    expect(r.tookMs).toBeLessThan(5_000);
  });

  it('0 ends the child at once (brutal kill)', async () => {
    const r = await stopWhileBusy(0, 10_000);
    expect(r.finished).toEqual([]);
    expect(r.dead.map((d) => d[0])).toEqual(['job', 'queued']);
  });

  it('a receive that fails while the child stops is a dead letter and restarts nothing', async () => {
    const t = testSystem();
    const dead: DeadLetter[] = [];
    t.system.deadLetters.on((d) => dead.push(d));
    let inits = 0;
    const failing = actor({ init: () => void inits++, receive: async () => { await new Promise((r) => setTimeout(r, 10)); throw new Error('late failure'); } });
    const sup = t.system.spawnSupervisor({ name: 'sup', children: [{ name: 'f', actor: failing }] });
    sup.child<string>('f').tell('job');
    await settle();
    await sup.terminateChild('f');
    expect(inits).toBe(1);
    expect(dead.map((d) => [d.message, d.reason, d.error?.message])).toEqual([['job', 'crashed', 'late failure']]);
  });

  it('system.shutdown waits for a tree child to finish the message in hand', async () => {
    const t = testSystem();
    const finished: string[] = [];
    const slow = actor({ receive: async (_s: undefined, m: string) => { await new Promise((r) => setTimeout(r, 20)); finished.push(m); } });
    const sup = t.system.spawnSupervisor({ name: 'sup', children: [{ name: 'slow', actor: slow }] });
    sup.child<string>('slow').tell('job');
    await settle();
    await t.system.shutdown();
    expect(finished).toEqual(['job']);
  });

  it('is checked on system.spawn too', () => {
    const { system } = testSystem();
    expect(codeOf(() => system.spawn(counted({}, [], 'x'), { name: 'x', shutdownMs: Number.NaN }))).toBe('ERR_INVALID_OPTION');
    expect(codeOf(() => system.spawn(counted({}, [], 'x'), { name: 'x', shutdwnMs: 5 } as never))).toBe('ERR_INVALID_OPTION');
  });
});
