import { describe, expect, it } from 'vitest';
import { actor, createSystem, oneForOne } from '../../system/index.js';
import { settle } from '../support/helpers.js';

// Issue 12, item 3: a child whose init keeps failing with no restart backoff was restarted
// recursively (restart -> init throws -> childExited -> restart ...): with a large maxRestarts the
// stack overflowed (about 1,200 attempts) instead of escalating.
describe('a child whose init always throws, under a supervisor with no restart backoff', () => {
  it('is restarted maxRestarts times without growing the stack, then the supervisor escalates', async () => {
    const system = createSystem({ logger: false });
    let inits = 0;
    const broken = actor({ init: () => { inits++; throw new Error('cannot start'); }, receive: () => undefined });
    const events: string[] = [];
    system.events.on((e) => events.push(e.type));
    // The stack stays flat (no RangeError); the tree gives up while starting, which spawnSupervisor says.
    expect(() => system.spawnSupervisor({ name: 'sup', strategy: oneForOne({ maxRestarts: 5_000, withinMs: 3_600_000 }), children: [{ name: 'a', actor: broken }] })).toThrow(expect.objectContaining({ code: 'ERR_START_FAILED' }));
    await settle();
    expect(inits).toBe(5_001);
    expect(events.filter((t) => t === 'escalated')).toHaveLength(1);
  });
});
