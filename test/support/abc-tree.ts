import { actor, type DeadLetter, type RestartType, type SupervisorStrategy } from '../../system/index.js';
import { testSystem } from './helpers.js';

export type Msg = number | 'crash' | 'reject' | 'stop';
export type Name = 'a' | 'b' | 'c';

/** A supervisor 'sup' over children a, b, c (in that start order) that count their starts and record what they saw. */
export function tree(strategy: SupervisorStrategy | undefined, restart: RestartType = 'permanent') {
  const t = testSystem();
  const starts: Record<Name, number> = { a: 0, b: 0, c: 0 };
  const seen: Record<Name, number[]> = { a: [], b: [], c: [] };
  const child = (name: Name) => ({
    name,
    restart,
    actor: actor<Msg, null>({
      init: () => (starts[name]++, null),
      receive: (_s, m, ctx) => {
        if (m === 'crash') throw new Error(`${name} crashed`);
        if (m === 'reject') return Promise.reject(new Error(`${name} rejected`));
        if (m === 'stop') return ctx.stop();
        seen[name].push(m);
      },
    }),
  });
  const sup = t.system.spawnSupervisor({ name: 'sup', ...(strategy ? { strategy } : {}), children: [child('a'), child('b'), child('c')] });
  const dead: DeadLetter[] = [];
  t.system.deadLetters.on((d) => dead.push(d));
  const restarted = () => t.events.flatMap((e) => (e.type === 'restarted' ? [e.path] : []));
  const ref = (name: Name) => sup.child<Msg>(name);
  return { ...t, sup, starts, seen, dead, restarted, ref };
}
