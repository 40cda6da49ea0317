import { describe, expect, it } from 'vitest';
import { actor, createSystem, isBatonError, oneForOne } from '../../system/index.js';
import { settle } from '../support/helpers.js';

// Issue 12, item 18: a static child that failed to start made spawnSupervisor return a normal handle,
// and watch() then reported 'unknown'.
describe('spawnSupervisor with a child whose init keeps throwing', () => {
  it('throws ERR_START_FAILED with the cause, and frees the name for a fixed spec', async () => {
    const system = createSystem({ logger: false });
    const broken = actor({ init: () => { throw new Error('no database'); }, receive: () => undefined });
    let error: unknown;
    try {
      system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 2 }), children: [{ name: 'db', actor: broken }] });
    } catch (err) {
      error = err;
    }
    expect(isBatonError(error, 'ERR_START_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/could not start its children: .*no database/);
    await settle();
    const fixed = system.spawnSupervisor({ name: 'sup', children: [{ name: 'db', actor: actor({ receive: () => undefined }) }] });
    expect(fixed.child<string>('db').tell('hi')).toBe('enqueued');
  });
});
