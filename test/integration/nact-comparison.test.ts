import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { agent, createSystem, type Outcome } from '../../system/index.js';

// The same fault plan on nact 7.6.2 (the baseline the design notes measured) and on Baton: a 3-stage
// chain whose middle stage crashes on every 4th message the first time it sees it, and is reset.
// nact drops the message being processed when an actor crashes; Baton retries it. A message that
// always crashes is lost silently by nact and dead-lettered, with its history, by Baton.

const require = createRequire(import.meta.url);
const nact = require('nact') as {
  start(): unknown;
  spawn(parent: unknown, f: (state: unknown, msg: number) => unknown, name: string, props: object): unknown;
  spawnStateless(parent: unknown, f: (msg: number) => unknown, name?: string): unknown;
  dispatch(actor: unknown, msg: number): void;
  stop(actor: unknown): void;
};

const messages = Array.from({ length: 12 }, (_, i) => i + 1);

/** Waits until `done()` or `ms` of real time, then a little more for stragglers. */
async function waitFor(done: () => boolean, ms = 1_000): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 30));
}

describe('one fault plan on nact and on Baton', () => {
  it('nact loses the message in flight at each crash (4, 8, 12); Baton delivers all twelve once', async () => {
    // nact
    const seenByNact = new Set<number>();
    const nactSink: number[] = [];
    const system = nact.start();
    const sink = nact.spawnStateless(system, (m) => void nactSink.push(m), 'sink');
    const middle = nact.spawn(
      system,
      (state, m) => {
        if (m % 4 === 0 && !seenByNact.has(m)) {
          seenByNact.add(m);
          throw new Error(`crash on ${m}`);
        }
        nact.dispatch(sink, m);
        return state;
      },
      'middle',
      { onCrash: (_m: unknown, _e: unknown, ctx: { reset: unknown }) => ctx.reset },
    );
    const first = nact.spawnStateless(system, (m) => nact.dispatch(middle, m), 'first');
    for (const m of messages) nact.dispatch(first, m);
    await waitFor(() => nactSink.length >= 12, 500);
    nact.stop(system);
    expect([...nactSink].sort((a, b) => a - b)).toEqual([1, 2, 3, 5, 6, 7, 9, 10, 11]);

    // Baton
    const seenByBaton = new Set<number>();
    const baton = createSystem({ logger: false });
    const batonSink: number[] = [];
    const pipe = baton.spawnPipeline<number, number>({
      name: 'chain',
      defaults: { retry: { backoff: { minMs: 1, maxMs: 2 } } },
      stages: [
        agent({ name: 'first', handle: (m: number) => m }),
        agent({
          name: 'middle',
          handle: (m: number) => {
            if (m % 4 === 0 && !seenByBaton.has(m)) {
              seenByBaton.add(m);
              throw new Error(`crash on ${m}`);
            }
            return m;
          },
        }),
        agent({ name: 'sink', handle: (m: number) => (batonSink.push(m), m) }),
      ],
    });
    await pipe.sendMany(messages);
    await pipe.drain();
    expect([...batonSink].sort((a, b) => a - b)).toEqual(messages);
    expect(pipe.stats().stages.find((s) => s.name === 'middle')).toMatchObject({ failed: 3, retried: 3, deadLettered: 0 });
    await baton.shutdown();
  });

  it('nact drops a message that always crashes without a trace; Baton dead-letters it with every attempt', async () => {
    const nactSink: number[] = [];
    const system = nact.start();
    const sink = nact.spawnStateless(system, (m) => void nactSink.push(m), 'sink');
    const middle = nact.spawn(
      system,
      (state, m) => {
        if (m === 7) throw new Error('poison');
        nact.dispatch(sink, m);
        return state;
      },
      'middle',
      { onCrash: (_m: unknown, _e: unknown, ctx: { reset: unknown }) => ctx.reset },
    );
    for (const m of messages) nact.dispatch(middle, m);
    await waitFor(() => nactSink.length >= 11, 500);
    nact.stop(system);
    expect(nactSink.includes(7)).toBe(false);
    expect(nactSink).toHaveLength(11);

    const baton = createSystem({ logger: false });
    const pipe = baton.spawnPipeline<number, number>({
      name: 'chain',
      defaults: { retry: { maxAttempts: 3, backoff: { minMs: 1, maxMs: 2 } } },
      stages: [
        agent({ name: 'middle', handle: (m: number) => { if (m === 7) throw new Error('poison'); return m; } }),
        agent({ name: 'sink', handle: (m: number) => m }),
      ],
    });
    const outcomes: Outcome<number>[] = [];
    pipe.onOutcome((o) => outcomes.push(o));
    await pipe.sendMany(messages);
    await pipe.drain();
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(11);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ attempts: 3, error: { code: 'ERR_TASK_FAILED', message: 'poison' } });
    expect(dead[0]!.errors).toHaveLength(3);
    await baton.shutdown();
  });
});
