import { describe, expect, it } from 'vitest';
import { actor, oneForAll, oneForOne, restForOne, type DeadLetter, type RestartType, type Terminated } from '../../system/index.js';
import { tree, type Msg } from '../support/abc-tree.js';
import { expectBatonError } from '../support/assertions.js';
import { settle, testSystem } from '../support/helpers.js';

const STRATEGIES = [
  ['one-for-one', oneForOne, ['b']],
  ['one-for-all', oneForAll, ['a', 'b', 'c']],
  ['rest-for-one', restForOne, ['b', 'c']],
] as const;
/** Whether a child of this restart type is restarted after this kind of exit (spelled out, not computed). */
const RESTARTED: Record<RestartType, Record<'crash' | 'normal', boolean>> = {
  permanent: { crash: true, normal: true },
  transient: { crash: true, normal: false },
  temporary: { crash: false, normal: false },
};

describe('the strategy × restart type × exit matrix (child b of a, b, c fails)', () => {
  for (const [kind, make, siblings] of STRATEGIES) {
    for (const type of ['permanent', 'transient', 'temporary'] as const) {
      for (const exit of ['crash', 'normal'] as const) {
        const how = exit === 'crash' ? 'crashes' : 'exits normally';
        if (RESTARTED[type][exit]) {
          it(`${kind}: a ${type} child that ${how} is restarted together with ${siblings.join(', ')}`, async () => {
            const { starts, restarted, ref, seen } = tree(make(), type);
            ref('b').tell(exit === 'crash' ? 'crash' : 'stop');
            await settle();
            expect(restarted()).toEqual(siblings.map((s) => `sup/${s}`));
            for (const n of ['a', 'b', 'c'] as const) expect(starts[n]).toBe((siblings as readonly string[]).includes(n) ? 2 : 1);
            ref('b').tell(5);
            await settle();
            expect(seen.b).toEqual([5]);
          });
        } else {
          it(`${kind}: a ${type} child that ${how} stays stopped and no sibling is restarted`, async () => {
            const { system, starts, restarted, ref, seen } = tree(make(), type);
            const told: Terminated[] = [];
            system.watch('sup/b', (x) => told.push(x));
            ref('b').tell(exit === 'crash' ? 'crash' : 'stop');
            await settle();
            expect(restarted()).toEqual([]);
            expect(starts).toEqual({ a: 1, b: 1, c: 1 });
            expect(told).toMatchObject([{ address: 'sup/b', reason: exit === 'crash' ? 'crashed' : 'normal' }]);
            expectBatonError(() => system.lookup('sup/b'), 'ERR_UNKNOWN_ADDRESS');
            ref('a').tell(1);
            ref('c').tell(2);
            await settle();
            expect([seen.a, seen.c]).toEqual([[1], [2]]);
          });
        }
      }
    }
  }

  it.each([
    ['the first child failing restarts every child', 'a', ['sup/a', 'sup/b', 'sup/c']],
    ['the last child failing restarts only itself', 'c', ['sup/c']],
  ] as const)('rest-for-one: %s', async (_sentence, failing, expected) => {
    const { restarted, ref } = tree(restForOne());
    ref(failing).tell('crash');
    await settle();
    expect(restarted()).toEqual(expected);
  });

  it('one-for-all: a sibling that ended for good (temporary) is not started again', async () => {
    const { starts, ref } = tree(oneForAll(), 'temporary');
    ref('a').tell('stop');
    await settle();
    expect(starts).toEqual({ a: 1, b: 1, c: 1 });
  });
});

describe('messages around a crash', () => {
  it("dead-letters the message being processed at a crash with reason 'crashed' and the error", async () => {
    const { ref, dead } = tree(oneForOne());
    ref('b').tell('crash');
    await settle();
    expect(dead).toEqual([{ to: 'sup/b', message: 'crash', reason: 'crashed', error: expect.objectContaining({ message: 'b crashed' }), at: 0 }]);
  });

  it('treats a rejected promise from receive as a crash of that message', async () => {
    const { ref, dead, starts } = tree(oneForOne());
    ref('b').tell('reject');
    await settle();
    expect(dead).toMatchObject([{ to: 'sup/b', message: 'reject', reason: 'crashed', error: { message: 'b rejected' } }]);
    expect(starts.b).toBe(2);
  });

  it('keeps messages sent while an actor is restarting and processes them in order after the restart', async () => {
    const { ref, seen, clock, dead } = tree(oneForOne({ backoff: { minMs: 100, jitter: 0 } }));
    const b = ref('b');
    for (const m of [1, 'crash', 2, 3] as const) b.tell(m);
    await settle();
    expect(seen.b).toEqual([1]);
    expect(b.tell(4)).toBe('enqueued');
    await clock.advance(100);
    await settle();
    expect(seen.b).toEqual([1, 2, 3, 4]);
    expect(dead.map((d) => d.message)).toEqual(['crash']);
  });

  it('never silently loses a message a sibling was still processing when one-for-all restarted it', async () => {
    const { system } = testSystem();
    const lost: DeadLetter[] = [];
    system.deadLetters.on((d) => lost.push(d));
    const handled: string[] = [];
    let gate!: () => void;
    system.spawnSupervisor({
      name: 'sup',
      strategy: oneForAll(),
      children: [
        { name: 'slow', actor: actor<string, null>({ receive: (_s, m) => (handled.push(m), new Promise<void>((r) => (gate = r))) }) },
        { name: 'fragile', actor: actor<string, null>({ receive: () => { throw new Error('boom'); } }) },
      ],
    });
    system.tell('sup/slow', 'in-flight');
    await settle();
    system.tell('sup/fragile', 'x');
    await settle();
    gate();
    await settle();
    const processedAgain = handled.filter((m) => m === 'in-flight').length === 2;
    const deadLettered = lost.some((d) => d.message === 'in-flight');
    expect(processedAgain || deadLettered).toBe(true);
  });
});

describe('restart intensity', () => {
  const crashPast = async (t: ReturnType<typeof tree>, times: number): Promise<void> => {
    for (let i = 0; i < times; i++) (t.ref('b').tell('crash'), await settle());
  };

  it('gives up past its intensity: escalates, terminates every child and tells their watchers', async () => {
    const t = tree(oneForOne({ maxRestarts: 2, withinMs: 1_000 }));
    const told: Terminated[] = [];
    for (const n of ['a', 'b', 'c']) t.system.watch(`sup/${n}`, (x) => told.push(x));
    const a = t.ref('a');
    await crashPast(t, 3);
    expect(t.starts.b).toBe(3);
    const escalated = t.events.filter((e) => e.type === 'escalated');
    expect(escalated).toMatchObject([{ path: 'sup', reason: expect.stringContaining("'sup/b'") }]);
    expect(told.map((x) => x.address).sort()).toEqual(['sup/a', 'sup/b', 'sup/c']);
    for (const x of told) expect(x).toMatchObject({ reason: 'escalated', error: { code: 'ERR_ESCALATED' } });
    expect(a.tell(1)).toBe('stopped');
    expect(t.system.tell('sup/a', 1)).toBe('stopped');
  });

  it("dead-letters the messages still queued when the supervisor gives up, with reason 'stopped'", async () => {
    const t = tree(oneForOne({ maxRestarts: 0 }));
    for (const m of ['crash', 7, 8] as const) t.ref('b').tell(m);
    await settle();
    expect(t.dead.map((d) => [d.to, d.message, d.reason])).toEqual([
      ['sup/b', 'crash', 'crashed'],
      ['sup/b', 7, 'stopped'],
      ['sup/b', 8, 'stopped'],
    ]);
    expect(t.seen.b).toEqual([]);
  });

  it("tells a watcher of the supervisor itself when it gives up, with reason 'escalated'", async () => {
    const t = tree(oneForOne({ maxRestarts: 0 }));
    const told: Terminated[] = [];
    t.system.watch('sup', (x) => told.push(x));
    await crashPast(t, 1);
    expect(told).toMatchObject([{ address: 'sup', reason: 'escalated' }]);
  });

  it('defaults to 3 restarts within 5 s and escalates on the 4th', async () => {
    const t = tree(undefined);
    await crashPast(t, 3);
    expect(t.events.some((e) => e.type === 'escalated')).toBe(false);
    await crashPast(t, 1);
    expect(t.events.filter((e) => e.type === 'escalated')).toHaveLength(1);
  });

  it('forgets restarts older than withinMs on the simulated clock', async () => {
    const t = tree(oneForOne({ maxRestarts: 1, withinMs: 1_000 }));
    await crashPast(t, 1);
    await t.clock.advance(1_001);
    await crashPast(t, 1);
    expect(t.events.some((e) => e.type === 'escalated')).toBe(false);
    expect(t.starts.b).toBe(3);
  });
});

describe('nested supervisors', () => {
  function nested(topMaxRestarts: number) {
    const t = testSystem();
    const starts = { leaf: 0, twin: 0 };
    const leaf = (name: 'leaf' | 'twin') => ({ name, actor: actor<Msg, null>({ init: () => (starts[name]++, null), receive: (_s, m) => { if (m === 'crash') throw new Error('leaf broke'); } }) });
    t.system.spawnSupervisor({
      name: 'top',
      strategy: oneForOne({ maxRestarts: topMaxRestarts }),
      children: [{ name: 'mid', supervisor: { strategy: oneForOne({ maxRestarts: 0 }), children: [leaf('leaf'), leaf('twin')] } }],
    });
    return { ...t, starts };
  }

  it('escalates from the inner supervisor to its parent, which restarts the whole inner subtree', async () => {
    const { system, events, starts } = nested(5);
    system.tell('top/mid/leaf', 'crash');
    await settle();
    expect(events.filter((e) => e.type === 'escalated').map((e) => e.path)).toEqual(['top/mid']);
    expect(starts).toEqual({ leaf: 2, twin: 2 });
    expect(system.tell('top/mid/leaf', 1)).toBe('enqueued');
  });

  it('escalates on up when the parent is past its own intensity, terminating the whole tree', async () => {
    const { system, events } = nested(0);
    const told: Terminated[] = [];
    system.watch('top/mid/twin', (x) => told.push(x));
    system.tell('top/mid/leaf', 'crash');
    await settle();
    expect(events.filter((e) => e.type === 'escalated').map((e) => e.path)).toEqual(['top/mid', 'top']);
    expect(told).toMatchObject([{ address: 'top/mid/twin', reason: 'escalated' }]);
  });
});

describe('restart backoff on the simulated clock', () => {
  it('restarts only after the delay, and doubles the delay for the next restart in a row', async () => {
    const { ref, starts, clock } = tree(oneForOne({ backoff: { minMs: 100, jitter: 0 } }));
    ref('b').tell('crash');
    await clock.advance(99);
    expect(starts.b).toBe(1);
    await clock.advance(1);
    expect(starts.b).toBe(2);
    ref('b').tell('crash');
    await clock.advance(199);
    expect(starts.b).toBe(2);
    await clock.advance(1);
    expect(starts.b).toBe(3);
  });

  it('goes back to the first delay after resetAfterMs without a restart', async () => {
    const { ref, starts, clock } = tree(oneForOne({ maxRestarts: 10, resetAfterMs: 1_000, backoff: { minMs: 100, jitter: 0 } }));
    ref('b').tell('crash');
    await clock.advance(100);
    await clock.advance(5_000);
    ref('b').tell('crash');
    await clock.advance(100);
    expect(starts.b).toBe(3);
  });

  it('holds the siblings of a one-for-all restart until the delay has passed', async () => {
    const { ref, seen, clock } = tree(oneForAll({ backoff: { minMs: 250, jitter: 0 } }));
    ref('b').tell('crash');
    await settle();
    ref('a').tell(1);
    await clock.advance(249);
    expect(seen.a).toEqual([]);
    await clock.advance(1);
    await settle();
    expect(seen.a).toEqual([1]);
  });
});
