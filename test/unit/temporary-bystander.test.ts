import { describe, expect, it } from 'vitest';
import { actor, createSystem, oneForAll, restForOne, type SupervisorStrategy } from '../../system/index.js';
import { settle } from '../support/helpers.js';

// Issue 12, item 16: a temporary child that is a bystander of a one_for_all or rest_for_one restart
// was restarted; as in OTP, it is stopped and removed.
const child = actor({ receive: (_s: undefined, m: string) => { if (m === 'crash') throw new Error('crash'); } });

describe.each([
  ['one-for-all', oneForAll()],
  ['rest-for-one', restForOne()],
] as [string, SupervisorStrategy][])('a %s restart', (_kind, strategy) => {
  it('stops a temporary bystander for good and restarts the permanent ones', async () => {
    const system = createSystem({ logger: false });
    const events: string[] = [];
    system.events.on((e) => (e.type === 'restarted' || e.type === 'stopped' ? events.push(`${e.type} ${e.path}`) : undefined));
    const sup = system.spawnSupervisor({ name: 'sup', strategy, children: [{ name: 'a', actor: child }, { name: 'temp', actor: child, restart: 'temporary' }, { name: 'c', actor: child }] });
    sup.child<string>('a').tell('crash');
    await settle();
    expect(events).toContain('stopped sup/temp');
    expect(events).not.toContain('restarted sup/temp');
    expect(events).toContain('restarted sup/a');
    expect(events).toContain('restarted sup/c');
    expect(sup.child<string>('c').tell('hi')).toBe('enqueued');
  });
});
