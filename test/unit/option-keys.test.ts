import { describe, expect, it } from 'vitest';
import { actor, agent, createSystem, isBatonError, oneForAll } from '../../system/index.js';

/** The error a call throws, as { code, message, option, suggestion }. */
function refusal(fn: () => unknown): { code: string; message: string; option: unknown; suggestion: unknown } {
  try {
    fn();
  } catch (err) {
    if (!isBatonError(err)) throw err;
    return { code: err.code, message: err.message, option: err.details['option'], suggestion: err.details['suggestion'] };
  }
  throw new Error('it did not throw');
}

const handle = (x: number) => x;

describe('misspelt option keys', () => {
  it.each([
    ['agent', () => agent({ name: 'a', handle, retires: { maxAttempts: 2 } } as never), "agent 'a'.retires", 'retry'],
    ['agent timeout', () => agent({ name: 'a', handle, timoutMs: 5 } as never), "agent 'a'.timoutMs", 'timeoutMs'],
    ['agent retry', () => createSystem({ logger: false }).spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle, retry: { maxAttemps: 2 } as never })] }), "stage 'p/a'.retry.maxAttemps", 'maxAttempts'],
    ['backoff', () => agent({ name: 'a', handle, retry: { backoff: { minMS: 1 } as never } }) && createSystem({ logger: false }).spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle, retry: { backoff: { minMS: 1 } as never } })] }), "stage 'p/a'.retry.backoff.minMS", 'minMs'],
    ['breaker', () => createSystem({ logger: false }).spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle, breaker: { treshold: 3 } as never })] }), "stage 'p/a'.breaker.treshold", 'threshold'],
    ['mailbox', () => createSystem({ logger: false }).spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle, mailbox: { capasity: 3 } as never })] }), "stage 'p/a'.mailbox.capasity", 'capacity'],
    ['pipeline', () => createSystem({ logger: false }).spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle })], default: {} } as never), "pipeline 'p'.default", 'defaults'],
    ['pipeline defaults', () => createSystem({ logger: false }).spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle })], defaults: { concurency: 2 } as never }), "pipeline 'p' defaults.concurency", 'concurrency'],
    ['system', () => createSystem({ loger: false } as never), 'createSystem(options).loger', 'logger'],
    ['strategy', () => oneForAll({ maxRestart: 2 } as never), 'strategy.maxRestart', 'maxRestarts'],
    ['actor', () => actor({ receive: () => undefined, recieve: 1 } as never), 'actor(options).recieve', 'receive'],
  ])('are refused with ERR_INVALID_OPTION naming the key and the one meant: %s', (_what, fn, option, suggestion) => {
    const r = refusal(fn);
    expect(r).toMatchObject({ code: 'ERR_INVALID_OPTION', option, suggestion });
    expect(r.message).toContain(`did you mean '${suggestion}'?`);
  });

  it('names no suggestion when nothing is close, and lists the known options', () => {
    const r = refusal(() => agent({ name: 'a', handle, colour: 'blue' } as never));
    expect(r.suggestion).toBeUndefined();
    expect(r.message).toMatch(/unknown option 'colour'\. Known options: name, handle, init, route/);
  });

  it('takes every documented option, and an agent spread into agent() again', () => {
    const a = agent({ name: 'a', handle, init: () => 1, route: () => null, retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 2, factor: 2, jitter: 0 } }, restart: { maxRestarts: 1, withinMs: 1, backoff: { minMs: 1 } }, breaker: { threshold: 2, backoff: { minMs: 1 }, maxHoldMs: 5 }, mailbox: { capacity: 2, overflow: 'reject' }, timeoutMs: 5, concurrency: 2, orderByKey: true, keepState: true });
    expect(agent({ ...a, name: 'b' }).name).toBe('b');
    const system = createSystem({ logger: false, scheduler: { throughput: 8, sliceMs: 4 } });
    expect(system.spawnPipeline({ name: 'p', stages: [a], defaults: { concurrency: 1 }, supervisor: { maxRestarts: 1, withinMs: 10, backoff: { minMs: 0 }, resetAfterMs: 5 }, keepCompletedMs: 1 }).name).toBe('p');
  });
});
