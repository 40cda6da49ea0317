import { describe, expect, it } from 'vitest';
import { actor, isBatonError, oneForAll, oneForOne, restForOne, RingBuffer, type DeadLetter, type RestartType, type SupervisorStrategy, type Terminated } from '../../system/index.js';
import { settle, testSystem } from '../support/helpers.js';

type Msg = 'crash' | 'stop' | number;

/** Three children a, b, c; counts how often each was (re)started. */
function tree(strategy: SupervisorStrategy, restart: RestartType) {
  const t = testSystem();
  const starts: Record<string, number> = { a: 0, b: 0, c: 0 };
  const got: number[] = [];
  const child = (name: string) => ({
    name,
    restart,
    actor: actor<Msg, null>({
      init: () => (starts[name]!++, null),
      receive: (_s, m, ctx) => {
        if (m === 'crash') throw new Error(`${name} crashed`);
        if (m === 'stop') return ctx.stop();
        got.push(m);
      },
    }),
  });
  const sup = t.system.spawnSupervisor({ name: 'sup', strategy, children: [child('a'), child('b'), child('c')] });
  const dead: DeadLetter[] = [];
  t.system.deadLetters.on((d) => dead.push(d));
  return { ...t, sup, starts, got, dead };
}

describe.each([
  ['one-for-one', oneForOne, { a: 1, b: 2, c: 1 }],
  ['one-for-all', oneForAll, { a: 2, b: 2, c: 2 }],
  ['rest-for-one', restForOne, { a: 1, b: 2, c: 2 }],
] as const)('a %s supervisor', (_name, make, afterCrashOfB) => {
  it('permanent_crash: restarts the failed child and the siblings its strategy names', async () => {
    const { sup, starts } = tree(make(), 'permanent');
    sup.child<Msg>('b').tell('crash');
    await settle();
    expect(starts).toEqual(afterCrashOfB);
  });

  it('permanent_normal: restarts a child that stopped itself', async () => {
    const { sup, starts } = tree(make(), 'permanent');
    sup.child<Msg>('b').tell('stop');
    await settle();
    expect(starts.b).toBe(2);
  });

  it('transient_normal: lets a child that stopped itself stay stopped', async () => {
    const { system, sup, starts } = tree(make(), 'transient');
    sup.child<Msg>('b').tell('stop');
    await settle();
    expect(starts).toEqual({ a: 1, b: 1, c: 1 });
    expect(() => system.lookup('sup/b')).toThrow(/ERR_UNKNOWN_ADDRESS|no actor/);
  });

  it('transient_crash: restarts it', async () => {
    const { sup, starts } = tree(make(), 'transient');
    sup.child<Msg>('b').tell('crash');
    await settle();
    expect(starts).toEqual(afterCrashOfB);
  });

  it('temporary_crash: never restarts it', async () => {
    const { sup, starts } = tree(make(), 'temporary');
    sup.child<Msg>('b').tell('crash');
    await settle();
    expect(starts).toEqual({ a: 1, b: 1, c: 1 });
  });
});

describe('supervision', () => {
  it('gives up past its intensity: terminates its children, dead-letters their mail and tells the watchers', async () => {
    const { system, sup, events, dead } = tree(oneForOne({ maxRestarts: 2, withinMs: 1_000 }), 'permanent');
    const told: Terminated[] = [];
    system.watch('sup/a', (t) => told.push(t));
    const b = sup.child<Msg>('b');
    for (let i = 0; i < 3; i++) {
      b.tell('crash');
      await settle();
    }
    expect(events.filter((e) => e.type === 'escalated')).toHaveLength(1);
    expect(told).toEqual([{ address: 'sup/a', reason: 'escalated', error: expect.objectContaining({ name: 'BatonError' }) }]);
    expect(dead.filter((d) => d.reason === 'crashed')).toHaveLength(3);
    expect(b.tell(1)).toBe('stopped');
  });

  it('escalates from a nested supervisor to its parent, which restarts the whole subtree', async () => {
    const { system } = testSystem();
    let inner = 0;
    const sup = system.spawnSupervisor({
      name: 'top',
      strategy: oneForOne({ maxRestarts: 5 }),
      children: [{ name: 'mid', supervisor: { strategy: oneForOne({ maxRestarts: 0 }), children: [{ name: 'leaf', actor: actor<Msg, null>({ init: () => (inner++, null), receive: (_s, m) => { if (m === 'crash') throw new Error('boom'); } }) }] } }],
    });
    sup.child<Msg>('mid/leaf').tell('crash');
    await settle();
    expect(inner).toBe(2);
  });

  it('waits out the restart backoff before restarting', async () => {
    const { sup, starts, clock } = tree(oneForOne({ backoff: { minMs: 500, jitter: 0 } }), 'permanent');
    sup.child<Msg>('a').tell('crash');
    await settle();
    expect(starts.a).toBe(1);
    await clock.advance(500);
    expect(starts.a).toBe(2);
  });

  it('keeps messages sent during a restart and processes them in order afterwards, and dead-letters the one that crashed', async () => {
    const { sup, got, clock, dead } = tree(oneForOne({ backoff: { minMs: 100, jitter: 0 } }), 'permanent');
    const a = sup.child<Msg>('a');
    a.tell(1);
    a.tell('crash');
    a.tell(2);
    a.tell(3);
    await settle();
    expect(got).toEqual([1]);
    await clock.advance(100);
    await settle();
    expect(got).toEqual([1, 2, 3]);
    expect(dead.map((d) => [d.to, d.message, d.reason])).toEqual([['sup/a', 'crash', 'crashed']]);
  });
});

describe('mailboxes and addresses', () => {
  it("answers 'rejected' under reject, 'dropped' (and a dead letter) under drop, and waits under back-pressure", async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    let release!: () => void;
    const blocker = new Promise<void>((r) => (release = r));
    const seen: number[] = [];
    const slow = actor<number, null>({ receive: async (_s, m) => { await blocker; seen.push(m); } });
    const rej = system.spawn(slow, { name: 'rej', mailbox: { capacity: 1, overflow: 'reject' } });
    const drop = system.spawn(slow, { name: 'drop', mailbox: { capacity: 1, overflow: 'drop' } });
    const bp = system.spawn(slow, { name: 'bp', mailbox: { capacity: 1 } });
    for (const ref of [rej, drop, bp]) ref.tell(0);
    await settle();
    for (const ref of [rej, drop, bp]) ref.tell(1);
    expect(rej.tell(2)).toBe('rejected');
    expect(drop.tell(2)).toBe('dropped');
    expect(dead).toMatchObject([{ to: 'drop', message: 2, reason: 'dropped' }]);
    let sent = false;
    const waiting = bp.send(2).then((r) => ((sent = true), r));
    await settle();
    expect(sent).toBe(false);
    release();
    expect(await waiting).toBe('enqueued');
    await settle();
    expect(seen.filter((m) => m === 2)).toHaveLength(1);
  });

  it('reports unknown addresses as dead letters or typed errors, never as throws from tell', async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    expect(system.tell('nobody', 1)).toBe('stopped');
    expect(dead[0]).toMatchObject({ to: 'nobody', reason: 'unknown-address' });
    try {
      system.lookup('nobody');
      expect.unreachable();
    } catch (e) {
      expect(isBatonError(e, 'ERR_UNKNOWN_ADDRESS') && e.message.includes("'nobody'")).toBe(true);
    }
    const told: Terminated[] = [];
    system.watch('nobody', (t) => told.push(t));
    await settle();
    expect(told).toEqual([{ address: 'nobody', reason: 'unknown' }]);
  });

  it('refuses a second actor with a taken name', () => {
    const { system } = testSystem();
    const a = actor<number, null>({ receive: () => undefined });
    system.spawn(a, { name: 'x' });
    expect(() => system.spawn(a, { name: 'x' })).toThrow(/ERR_DUPLICATE_NAME|already taken/);
  });

  it('yields to I/O during a long flood of messages', async () => {
    const { system } = testSystem();
    let handled = 0;
    let timerAt = -1;
    const self = system.spawn(
      actor<number, null>({
        receive: (_s, m, ctx) => {
          handled++;
          // A timer set once the flood is under way must fire before the flood ends.
          if (m === 299_000) setTimeout(() => (timerAt = handled), 0);
          if (m > 0) ctx.self.tell(m - 1);
        },
      }),
      { name: 'flood' },
    );
    self.tell(300_000);
    while (handled < 300_001) await new Promise((r) => setImmediate(r));
    expect(timerAt).toBeGreaterThan(1_001);
    expect(timerAt).toBeLessThan(300_001);
  });

  it('keeps a ring buffer in order across wrap-around, growth, unshift and removal', () => {
    const rb = new RingBuffer<number>(4);
    const model: number[] = [];
    for (let i = 0; i < 50; i++) {
      if (i % 3 === 0) (rb.shift(), model.shift());
      rb.push(i), model.push(i);
      if (i % 7 === 0) (rb.unshift(-i), model.unshift(-i));
      if (i % 11 === 0) {
        const gone = rb.removeFirst((x) => x % 5 === 0);
        const at = model.findIndex((x) => x % 5 === 0);
        expect(gone).toBe(at >= 0 ? model.splice(at, 1)[0] : undefined);
      }
    }
    expect([...rb]).toEqual(model);
  });
});
