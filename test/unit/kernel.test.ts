import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { actor, createSystem, RingBuffer, seededRandom, simulatedClock, type ActorSystem, type DeadLetter, type OverflowPolicy, type SystemOptions, type Terminated } from '../../system/index.js';
import { expectBatonError } from '../support/assertions.js';
import { settle, testSystem } from '../support/helpers.js';

describe('RingBuffer', () => {
  it('is a FIFO that answers undefined when empty and hands back what it held on clear', () => {
    const rb = new RingBuffer<number>(4);
    expect(rb.shift()).toBeUndefined();
    [1, 2, 3].forEach((x) => rb.push(x));
    expect([rb.length, rb.shift(), rb.shift(), rb.peek(), rb.length]).toEqual([3, 1, 2, 3, 1]);
    expect([rb.clear(), rb.length, rb.shift()]).toEqual([[3], 0, undefined]);
  });

  it('keeps order when it grows while its contents wrap around the end of the array', () => {
    const rb = new RingBuffer<number>(4);
    [1, 2, 3].forEach((x) => rb.push(x));
    rb.shift();
    rb.shift();
    [4, 5, 6].forEach((x) => rb.push(x)); // 3..6 now wraps: the array is full
    rb.push(7); // grows
    expect([...rb]).toEqual([3, 4, 5, 6, 7]);
    expect(Array.from({ length: 6 }, () => rb.shift())).toEqual([3, 4, 5, 6, 7, undefined]);
  });

  it('puts an unshifted item at the front, wrapping below index 0 and growing when full', () => {
    const rb = new RingBuffer<number>(4);
    [1, 2, 3].forEach((x) => rb.push(x));
    rb.unshift(0);
    rb.unshift(-1);
    expect([...rb]).toEqual([-1, 0, 1, 2, 3]);
    expect(rb.shift()).toBe(-1);
  });

  it('removes only the first match across the wrap point and keeps the rest in order', () => {
    const rb = new RingBuffer<number>(4);
    [9, 9, 1, 2].forEach((x) => rb.push(x));
    rb.shift();
    rb.shift();
    [3, 2].forEach((x) => rb.push(x)); // [1, 2, 3, 2], wrapped
    expect(rb.removeFirst((x) => x === 2)).toBe(2);
    expect(rb.removeFirst((x) => x === 42)).toBeUndefined();
    expect([...rb]).toEqual([1, 3, 2]);
  });

  it('behaves like an array under any mix of push, shift, unshift and removeFirst (property)', () => {
    const op = fc.oneof(fc.record({ k: fc.constant('push' as const), v: fc.integer({ min: 0, max: 9 }) }), fc.record({ k: fc.constant('unshift' as const), v: fc.integer({ min: 0, max: 9 }) }), fc.record({ k: fc.constant('shift' as const), v: fc.constant(0) }), fc.record({ k: fc.constant('remove' as const), v: fc.integer({ min: 0, max: 9 }) }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const rb = new RingBuffer<number>(4);
        const model: number[] = [];
        for (const { k, v } of ops) {
          if (k === 'push') (rb.push(v), model.push(v));
          else if (k === 'unshift') (rb.unshift(v), model.unshift(v));
          else if (k === 'shift') expect(rb.shift()).toBe(model.shift());
          else {
            const at = model.indexOf(v);
            expect(rb.removeFirst((x) => x === v)).toBe(at < 0 ? undefined : model.splice(at, 1)[0]);
          }
        }
        expect([...rb]).toEqual(model);
        expect(rb.length).toBe(model.length);
      }),
    );
  });
});

/** An actor whose first message blocks until `release()`, so later messages stay queued. */
function gated(system: ActorSystem, overflow: OverflowPolicy) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const seen: number[] = [];
  const ref = system.spawn(actor<number, null>({ receive: async (_s, m) => { if (m === 0) await gate; seen.push(m); } }), { name: overflow, mailbox: { capacity: 2, overflow } });
  return { ref, seen, release: () => release() };
}

describe('mailbox overflow through actors', () => {
  const setup = async (overflow: OverflowPolicy) => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const g = gated(system, overflow);
    g.ref.tell(0);
    await settle();
    expect([g.ref.tell(1), g.ref.tell(2)]).toEqual(['enqueued', 'enqueued']);
    return { ...g, dead };
  };

  it("answers 'rejected' under 'reject' without a throw or a dead letter", async () => {
    const { ref, seen, dead, release } = await setup('reject');
    expect(ref.tell(3)).toBe('rejected');
    release();
    await settle();
    expect(seen).toEqual([0, 1, 2]);
    expect(dead).toEqual([]);
  });

  it("answers 'dropped' under 'drop' and dead-letters the new message with reason 'dropped'", async () => {
    const { ref, seen, dead, release } = await setup('drop');
    expect(ref.tell(3)).toBe('dropped');
    expect(dead).toMatchObject([{ to: 'drop', message: 3, reason: 'dropped' }]);
    release();
    await settle();
    expect(seen).toEqual([0, 1, 2]);
  });

  it("makes send wait under 'back-pressure' until there is room, then delivers in order", async () => {
    const { ref, seen, dead, release } = await setup('back-pressure');
    expect(ref.tell(9)).toBe('rejected');
    const results: string[] = [];
    const sends = [3, 4, 5].map((m) => ref.send(m).then((r) => results.push(`${m}:${r}`)));
    await settle();
    expect(results).toEqual([]);
    release();
    await Promise.all(sends);
    await settle();
    expect(results).toEqual(['3:enqueued', '4:enqueued', '5:enqueued']);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    expect(dead).toEqual([]);
  });
});

describe('addresses, names and options', () => {
  it("answers 'stopped' to a tell to an unknown address and dead-letters it with reason 'unknown-address'", () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    expect(system.tell('nobody/home', 1)).toBe('stopped');
    expect(dead).toMatchObject([{ to: 'nobody/home', message: 1, reason: 'unknown-address', error: { code: 'ERR_UNKNOWN_ADDRESS' } }]);
  });

  it('throws ERR_UNKNOWN_ADDRESS naming the address from lookup of an unknown address', () => {
    const e = expectBatonError(() => testSystem().system.lookup('ghost'), 'ERR_UNKNOWN_ADDRESS');
    expect(e.message).toContain("'ghost'");
  });

  it('refuses a taken name with ERR_DUPLICATE_NAME, for actors, supervisors and sibling children', () => {
    const { system } = testSystem();
    const a = actor<number>({ receive: () => undefined });
    system.spawn(a, { name: 'x' });
    expectBatonError(() => system.spawn(a, { name: 'x' }), 'ERR_DUPLICATE_NAME');
    expectBatonError(() => system.spawnSupervisor({ name: 'x', children: [] }), 'ERR_DUPLICATE_NAME');
    expectBatonError(() => system.spawnSupervisor({ name: 's', children: [{ name: 'c', actor: a }, { name: 'c', actor: a }] }), 'ERR_DUPLICATE_NAME');
  });

  it.each([
    ['createSystem(options)', null],
    ['clock', { clock: { now: () => 0 } }],
    ['random', { random: 'seven' }],
    ['journal', { journal: {} }],
    ['scheduler.throughput', { scheduler: { throughput: 0 } }],
    ['logger', { logger: 'debug' }],
  ])('refuses a bad %s in createSystem with ERR_INVALID_OPTION naming it', (option, options) => {
    expectBatonError(() => createSystem(options as unknown as SystemOptions), 'ERR_INVALID_OPTION', option);
  });

  it.each([
    ["actor 'box' mailbox.capacity", { capacity: 0 }],
    ["actor 'box' mailbox.overflow", { overflow: 'block' }],
  ])('refuses a bad mailbox option naming %s', (option, mailbox) => {
    const { system } = testSystem();
    expectBatonError(() => system.spawn(actor({ receive: () => undefined }), { name: 'box', mailbox: mailbox as never }), 'ERR_INVALID_OPTION', option);
  });

  it('throws ERR_STOPPED from spawn after shutdown', async () => {
    const { system } = testSystem();
    await system.shutdown();
    expectBatonError(() => system.spawn(actor({ receive: () => undefined }), { name: 'late' }), 'ERR_STOPPED');
    expectBatonError(() => system.spawnSupervisor({ name: 'late-sup', children: [] }), 'ERR_STOPPED');
  });
});

describe('containment of observers', () => {
  it('keeps calling the other event listeners and running actors when one listener throws', async () => {
    const { system } = testSystem();
    const after: string[] = [];
    system.events.on(() => { throw new Error('observer bug'); });
    system.events.on((e) => after.push(`${e.type}:${e.path}`));
    const seen: number[] = [];
    const ref = system.spawn(actor<number>({ receive: (_s, m) => void seen.push(m) }), { name: 'w' });
    [1, 2].forEach((m) => ref.tell(m));
    await settle();
    expect(after).toContain('started:w');
    expect(seen).toEqual([1, 2]);
  });

  it('contains a throwing watch listener: the other watchers are told and the system keeps working', async () => {
    const { system } = testSystem();
    const told: Terminated[] = [];
    const ref = system.spawn(actor<string>({ receive: (_s, _m, ctx) => ctx.stop() }), { name: 'brief' });
    system.watch('brief', () => { throw new Error('watcher bug'); });
    system.watch('brief', (t) => told.push(t));
    ref.tell('bye');
    await settle();
    expect(told).toEqual([{ address: 'brief', reason: 'normal' }]);
    const seen: number[] = [];
    system.spawn(actor<number>({ receive: (_s, m) => void seen.push(m) }), { name: 'brief' }).tell(1);
    await settle();
    expect(seen).toEqual([1]);
  });

  it("reports death watch on an unknown address once, asynchronously, with reason 'unknown'", async () => {
    const { system } = testSystem();
    const told: Terminated[] = [];
    system.watch('nobody', (t) => told.push(t));
    expect(told).toEqual([]);
    await settle();
    expect(told).toEqual([{ address: 'nobody', reason: 'unknown' }]);
  });

  it("stops a top-level actor whose receive throws: 'crashed' to its watchers and its message to dead letters", async () => {
    const { system } = testSystem();
    const told: Terminated[] = [];
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const ref = system.spawn(actor<number>({ receive: () => { throw new Error('nope'); } }), { name: 'lone' });
    system.watch('lone', (t) => told.push(t));
    ref.tell(1);
    await settle();
    expect(told).toMatchObject([{ address: 'lone', reason: 'crashed', error: { message: 'nope' } }]);
    expect(dead).toMatchObject([{ to: 'lone', message: 1, reason: 'crashed' }]);
    expect(ref.tell(2)).toBe('stopped');
  });
});

describe('restarting a running actor', () => {
  it('takes back the message an async receive is working on, and the old receive cannot write into the new state', async () => {
    const { system } = testSystem();
    const seen: string[] = [];
    let finishOld!: () => void;
    let starts = 0;
    type State = { gen: number; log: string[] };
    const ref = system.spawn<string, State>(
      actor<string, State>({
        init: () => ({ gen: ++starts, log: [] }),
        receive: (state, msg) => {
          seen.push(`${state.gen}:${msg}`);
          if (msg === 'slow' && state.gen === 1) return new Promise((r) => (finishOld = () => r({ gen: 99, log: ['stale'] })));
          return { ...state, log: [...state.log, msg] };
        },
      }),
      { name: 'a' },
    );
    ref.tell('slow');
    ref.tell('next');
    await settle();
    expect(seen).toEqual(['1:slow']);
    (ref as unknown as { restart(): void }).restart(); // internal: what a supervisor calls
    await settle();
    finishOld(); // the old instance's receive ends late
    await settle();
    ref.tell('probe');
    await settle();
    // 'slow' ran again on the new instance, before 'next'; gen 99 (the stale state) never appears.
    expect(seen).toEqual(['1:slow', '2:slow', '2:next', '2:probe']);
    await system.shutdown();
  });
});

describe('scheduler and randomness', () => {
  it('yields to I/O: a timer and an immediate set during a 200,000-message flood run before it ends', async () => {
    const system = createSystem({ logger: false, clock: simulatedClock(), random: 1 });
    let handled = 0;
    let timerAt = -1;
    let immediateAt = -1;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const ref = system.spawn(actor<number>({
      receive: (_s, m, ctx) => {
        handled++;
        if (m === 199_000) (setTimeout(() => (timerAt = handled), 0), setImmediate(() => (immediateAt = handled)));
        if (m > 0) ctx.self.tell(m - 1);
        else done();
      },
    }), { name: 'flood' });
    ref.tell(200_000);
    await finished;
    expect(immediateAt).toBeGreaterThan(1_000);
    expect(immediateAt).toBeLessThan(200_001);
    expect(timerAt).toBeGreaterThan(1_000);
    expect(timerAt).toBeLessThan(200_001);
  });

  it('replays the same sequence from the same seed, also as a system option, and another from another seed', () => {
    const draw = (seed: number) => Array.from({ length: 1_000 }, seededRandom(seed));
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(42).every((x) => x >= 0 && x < 1)).toBe(true);
    const [a, b] = [createSystem({ logger: false, random: 9 }), createSystem({ logger: false, random: 9 })];
    expect([a.random(), a.random(), a.random()]).toEqual([b.random(), b.random(), b.random()]);
  });
});
