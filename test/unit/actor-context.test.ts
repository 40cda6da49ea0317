import { describe, expect, it } from 'vitest';
import { actor, createSystem, oneForOne, type ActorContext } from '../../system/index.js';
import { settle } from '../support/helpers.js';

describe("an actor's ctx.stop()", () => {
  // Issue 12, item 17: ctx.stop() called from init did not stop the actor (it handled the next message).
  it('called from init ends the actor normally before it handles a message', async () => {
    const system = createSystem({ logger: false });
    let received = 0;
    const ref = system.spawn(actor({ init: (ctx: ActorContext<string>) => ctx.stop(), receive: () => void received++ }), { name: 'quitter' });
    await settle();
    expect(ref.tell('hello')).toBe('stopped');
    await settle();
    expect(received).toBe(0);
  });

  // Issue 12, item 20: every incarnation shared one ctx, so a late ctx.stop() from a replaced
  // incarnation's async receive stopped the new incarnation.
  it('from a replaced incarnation is ignored: the restarted actor keeps handling messages', async () => {
    const system = createSystem({ logger: false });
    const contexts: ActorContext<string>[] = [];
    const handled: string[] = [];
    const sup = system.spawnSupervisor({
      name: 'sup',
      strategy: oneForOne({ maxRestarts: 5 }),
      children: [{
        name: 'a',
        restart: 'transient', // a normal exit would end it for good: the stale stop must not cause one
        actor: actor({
          init: (ctx: ActorContext<string>) => void contexts.push(ctx),
          receive: (_s: undefined, m: string) => {
            if (m === 'crash') throw new Error('crash');
            handled.push(m);
          },
        }),
      }],
    });
    const a = sup.child<string>('a');
    a.tell('crash'); // the first incarnation crashes; the supervisor starts a second
    await settle();
    expect(contexts).toHaveLength(2);
    contexts[0]!.stop(); // the old incarnation's ctx, used late
    a.tell('after');
    await settle();
    expect(handled).toEqual(['after']);
    expect(a.tell('still here')).toBe('enqueued');
  });
});
