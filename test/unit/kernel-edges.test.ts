import { describe, expect, it } from 'vitest';
import { actor, agent, oneForAll, systemClock, type BatonEvent, type DeadLetter, type Terminated } from '../../system/index.js';
import { settle, testSystem } from '../support/helpers.js';

// Edge cases of the plain-actor kernel found by a review (each test failed before its fix).

/** Collects unhandled rejections and uncaught exceptions while `f` runs. */
async function escaped(f: () => Promise<void>): Promise<unknown[]> {
  const errors: unknown[] = [];
  const record = (e: unknown) => errors.push(e);
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
  try {
    await f();
  } finally {
    process.off('unhandledRejection', record);
    process.off('uncaughtException', record);
  }
  return errors;
}

describe('an actor whose receive returns a misbehaving thenable', () => {
  it('runs one message at a time even when the thenable calls back twice', async () => {
    const { system } = testSystem();
    let inFlight = 0;
    let most = 0;
    const ref = system.spawn(
      actor<number, null>({
        receive: (_s, m) => {
          most = Math.max(most, ++inFlight);
          if (m === 1) {
            return {
              then(ok: (v: null) => void) {
                setImmediate(() => (inFlight--, ok(null)));
                setImmediate(() => setImmediate(() => ok(null))); // the second call back must change nothing
              },
            } as PromiseLike<null>;
          }
          return new Promise<null>(() => undefined); // message 2 stays in flight
        },
      }),
      { name: 'a' },
    );
    ref.tell(1);
    ref.tell(2);
    ref.tell(3);
    await settle(10);
    expect(most).toBe(1);
    await system.shutdown();
  });

  it('crashes on a thenable whose then() throws, without the error escaping the runtime', async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const errors = await escaped(async () => {
      const ref = system.spawn(actor<number, null>({ receive: () => ({ then: () => { throw new Error('bad thenable'); } }) as unknown as PromiseLike<null> }), { name: 'b' });
      ref.tell(1);
      await settle(5);
    });
    expect(errors).toEqual([]);
    expect(dead.map((d) => [d.message, d.reason, d.error?.message])).toEqual([[1, 'crashed', 'bad thenable']]);
  });
});

describe('describing what user code threw', () => {
  it('survives a circular null-prototype object, which String() cannot convert', async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const errors = await escaped(async () => {
      const ref = system.spawn(
        actor<number, null>({
          receive: () => {
            const o = Object.create(null) as Record<string, unknown>;
            o['self'] = o;
            throw o;
          },
        }),
        { name: 'g' },
      );
      ref.tell(1);
      await settle(5);
    });
    expect(errors).toEqual([]);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.error).toMatchObject({ name: 'NonError', message: expect.stringContaining('non-Error value thrown') });
  });
});

describe('one-for-all when a restart itself fails', () => {
  it('with backoff, brings b back once, after a, when a newer decision took b over', async () => {
    const { system, clock, events } = testSystem();
    let aInits = 0;
    const log: string[] = [];
    system.spawnSupervisor({
      name: 'sup',
      strategy: oneForAll({ backoff: { minMs: 100, jitter: 0 }, maxRestarts: 10 }),
      children: [
        {
          name: 'a',
          actor: actor<string, null>({
            init: () => {
              if (++aInits === 2) throw new Error('init fails once');
              log.push('a-init');
              return null;
            },
            receive: () => {
              throw new Error('a crashed');
            },
          }),
        },
        { name: 'b', actor: actor<string, null>({ init: () => (log.push('b-init'), null), receive: (_s, m) => void log.push(`b:${m}`) }) },
      ],
    });
    log.length = 0;
    system.tell('sup/a', 'boom');
    await settle();
    await clock.advance(100); // a's restart fails: the newer decision restarts a and b later
    system.tell('sup/b', 'x'); // waits in b's mailbox until b is back
    await settle();
    expect(events.filter((e: BatonEvent) => e.type === 'restarted' && e.path === 'sup/b')).toHaveLength(0);
    await clock.advance(1_000);
    expect(log).toEqual(['a-init', 'b-init', 'b:x']);
  });

  it('without backoff, restarts b once per decision that stands (not twice for one crash)', async () => {
    const { system } = testSystem();
    let aInits = 0;
    let bInits = 0;
    system.spawnSupervisor({
      name: 'sup',
      strategy: oneForAll({ maxRestarts: 10 }),
      children: [
        {
          name: 'a',
          actor: actor<string, null>({
            init: () => {
              if (++aInits === 2) throw new Error('init fails once');
              return null;
            },
            receive: () => {
              throw new Error('a crashed');
            },
          }),
        },
        { name: 'b', actor: actor<string, null>({ init: () => (bInits++, null), receive: () => undefined }) },
      ],
    });
    system.tell('sup/a', 'boom');
    await settle();
    expect(bInits).toBe(2); // started, then restarted once by the decision that stood
  });

  it('does not start a child that its supervisor terminated while the tree was starting', async () => {
    const { system, events } = testSystem();
    let got = 0;
    // The tree gives up while starting: spawnSupervisor says so (ERR_START_FAILED, issue 12 item 18).
    expect(() =>
      system.spawnSupervisor({
        name: 'sup',
        strategy: oneForAll({ maxRestarts: 2 }),
        children: [
          { name: 'a', actor: actor<string, null>({ init: () => { throw new Error('a cannot start'); }, receive: () => undefined }) },
          { name: 'b', actor: actor<string, null>({ init: (ctx) => (ctx.self.tell('hi'), null), receive: () => void got++ }) },
        ],
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_START_FAILED' }));
    await settle();
    const b = events.filter((e) => e.path === 'sup/b').map((e) => e.type);
    await system.shutdown();
    expect(b.at(-1)).toBe('stopped');
    expect(b.filter((t) => t === 'started').length).toBeLessThanOrEqual(1);
    expect(got).toBe(0);
  });
});

describe('messages and addresses', () => {
  it('delivers an undefined message like any other', async () => {
    const { system } = testSystem();
    const seen: unknown[] = [];
    const ref = system.spawn(actor<string | undefined, null>({ receive: (_s, m) => void seen.push(m) }), { name: 'e' });
    expect(ref.tell(undefined)).toBe('enqueued');
    ref.tell('after');
    await settle(5);
    expect(seen).toEqual([undefined, 'after']);
    await system.shutdown();
  });

  it('dead-letters an undefined message that is waiting when the actor stops', async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const ref = system.spawn(actor<string | undefined, null>({ receive: () => new Promise<null>(() => undefined) }), { name: 'e' });
    ref.tell('first'); // stays in flight
    ref.tell(undefined);
    await settle(5);
    await system.shutdown();
    // The message in flight is taken back and dead-lettered too: nothing accepted is dropped.
    expect(dead.map((d) => [d.message, d.reason])).toEqual([
      ['first', 'stopped'],
      [undefined, 'stopped'],
    ]);
  });

  it('leaves no address behind when spawnSupervisor refuses its spec', async () => {
    const { system } = testSystem();
    const dead: DeadLetter[] = [];
    system.deadLetters.on((d) => dead.push(d));
    const a = actor<string, null>({ receive: () => undefined });
    expect(() => system.spawnSupervisor({ name: 's', children: [{ name: 'c', actor: a }, { name: 'c', actor: a }] })).toThrow();
    expect(system.tell('s/c', 'lost')).toBe('stopped');
    await settle();
    expect(dead.map((d) => d.reason)).toEqual(['unknown-address']);
    // And the name is free again.
    system.spawnSupervisor({ name: 's', children: [{ name: 'c', actor: a }] });
    expect(system.tell('s/c', 'kept')).toBe('enqueued');
    await system.shutdown();
  });

  it('watches a pipeline and its stages: told once when they stop, not at once', async () => {
    const { system } = testSystem();
    const pipe = system.spawnPipeline({ name: 'p', stages: [agent({ name: 's', handle: (x: number) => x })] });
    const told: Terminated[] = [];
    system.watch('p', (t) => told.push(t));
    system.watch('p/s', (t) => told.push(t));
    system.watch('p/nope', (t) => told.push(t));
    await settle();
    expect(told).toEqual([{ address: 'p/nope', reason: 'unknown' }]);
    await pipe.stop();
    await settle();
    expect(told.map((t) => t.address).sort()).toEqual(['p', 'p/nope', 'p/s']);
    expect(told.find((t) => t.address === 'p')!.reason).toBe('stopped');
  });
});

describe('the system clock', () => {
  it('waits past 2^31 ms instead of firing at once (Node would, with a warning)', async () => {
    let fired = false;
    const timer = systemClock.setTimer(2 ** 31 + 1_000, () => (fired = true));
    await new Promise((r) => setTimeout(r, 30));
    timer.cancel();
    expect(fired).toBe(false);
  });
});
