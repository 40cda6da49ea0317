import { describe, expect, it } from 'vitest';
import { actor, createSystem, isBatonError, oneForAll, type SupervisorStrategy } from '../../system/index.js';
import { settle } from '../support/helpers.js';

// Issue 12, item 4: a strategy not made by the factories, or a restart type that does not exist, was
// accepted and then threw a TypeError inside the scheduler at the first crash.
const crashy = actor({ receive: (_s: undefined, m: string) => { if (m === 'crash') throw new Error('crash'); } });

function refusedWith(fn: () => unknown): { code: string; option: unknown } | undefined {
  try {
    fn();
  } catch (err) {
    return isBatonError(err) ? { code: err.code, option: err.details['option'] } : { code: `not a BatonError: ${String(err)}`, option: undefined };
  }
  return undefined;
}

describe('a supervisor spec', () => {
  it('refuses a hand-made strategy object at spawn, naming the option', () => {
    const fake = { kind: 'one-for-one', intensity: { maxRestarts: 1, withinMs: 10 } } as unknown as SupervisorStrategy;
    const system = createSystem({ logger: false });
    expect(refusedWith(() => system.spawnSupervisor({ name: 'sup', strategy: fake, children: [{ name: 'a', actor: crashy }] }))).toEqual({ code: 'ERR_INVALID_OPTION', option: "supervisor 'sup'.strategy" });
    expect(refusedWith(() => system.spawnSupervisor({ name: 'sup2', strategy: { ...oneForAll() }, children: [{ name: 'a', actor: crashy }] }))?.code).toBe('ERR_INVALID_OPTION');
  });

  it("refuses a restart type other than 'permanent', 'transient' or 'temporary'", () => {
    const system = createSystem({ logger: false });
    expect(refusedWith(() => system.spawnSupervisor({ name: 'sup', children: [{ name: 'a', actor: crashy, restart: 'sometimes' as never }] }))).toEqual({ code: 'ERR_INVALID_OPTION', option: "supervisor 'sup' child '\"a\"'.restart" });
  });

  it('takes a factory-made strategy and restarts a crashed child under it', async () => {
    const system = createSystem({ logger: false });
    const sup = system.spawnSupervisor({ name: 'sup', strategy: oneForAll({ maxRestarts: 2 }), children: [{ name: 'a', actor: crashy }] });
    const events: string[] = [];
    system.events.on((e) => events.push(`${e.type} ${e.path}`));
    sup.child<string>('a').tell('crash');
    await settle();
    expect(events).toContain('restarted sup/a');
  });
});
