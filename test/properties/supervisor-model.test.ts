import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { oneForAll, oneForOne, restForOne, type RestartType } from '../../src/index.js';
import { checkProperty } from '../../src/testkit/index.js';
import { tree, type Name } from '../support/abc-tree.js';
import { settle } from '../support/helpers.js';

/**
 * Model-based tests of a supervisor over children a, b, c: fast-check generates sequences of
 * crashes, normal exits, messages and clock steps (many of them landing exactly on the intensity
 * window's edges), runs them against the real supervisor on simulated time, and after each one
 * compares it with a model that is much simpler than the system: a list of restart times, which
 * children are alive, how often each started, what each saw.
 */
const NAMES: readonly Name[] = ['a', 'b', 'c'];
const KINDS = { 'one-for-one': oneForOne, 'one-for-all': oneForAll, 'rest-for-one': restForOne } as const;
type Kind = keyof typeof KINDS;

interface Config {
  readonly kind: Kind;
  readonly restart: RestartType;
  readonly maxRestarts: number;
  readonly withinMs: number;
}

interface Model {
  readonly config: Config;
  now: number;
  /** Times of the restarts the supervisor counted, oldest first. */
  restarts: number[];
  alive: Record<Name, boolean>;
  starts: Record<Name, number>;
  seen: Record<Name, number[]>;
  restartedEvents: string[];
  escalated: boolean;
}

type Real = ReturnType<typeof tree>;

function expectSame(m: Model, r: Real): void {
  expect(r.starts, 'starts per child').toEqual(m.starts);
  expect(r.seen, 'messages each child handled').toEqual(m.seen);
  expect(r.restarted(), 'restarted events, in order').toEqual(m.restartedEvents);
  expect(r.events.filter((e) => e.type === 'escalated').length, 'escalations').toBe(m.escalated ? 1 : 0);
}

/** A child exits (crash or normal); the model decides as OTP would. */
class Exit implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly child: number,
    readonly how: 'crash' | 'normal',
  ) {}
  check(m: Readonly<Model>): boolean {
    return !m.escalated && m.alive[NAMES[this.child]!];
  }
  async run(m: Model, r: Real): Promise<void> {
    const name = NAMES[this.child]!;
    r.ref(name).tell(this.how === 'crash' ? 'crash' : 'stop');
    await settle();
    const { restart, kind, maxRestarts, withinMs } = m.config;
    const restarts = restart === 'permanent' || (restart === 'transient' && this.how === 'crash');
    if (!restarts) {
      m.alive[name] = false;
    } else {
      const inWindow = m.restarts.filter((t) => t >= m.now - withinMs).length;
      if (inWindow + 1 > maxRestarts) {
        m.escalated = true;
        for (const n of NAMES) m.alive[n] = false;
      } else {
        m.restarts.push(m.now);
        const from = NAMES.indexOf(name);
        const set = kind === 'one-for-one' ? [name] : kind === 'one-for-all' ? [...NAMES] : NAMES.slice(from);
        for (const n of set) {
          if (!m.alive[n]) continue;
          m.starts[n]++;
          m.restartedEvents.push(`sup/${n}`);
        }
      }
    }
    expectSame(m, r);
  }
  toString(): string {
    return `${NAMES[this.child]} ${this.how === 'crash' ? 'crashes' : 'exits'}`;
  }
}

class Tell implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly child: number,
    readonly value: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return !m.escalated && m.alive[NAMES[this.child]!];
  }
  async run(m: Model, r: Real): Promise<void> {
    const name = NAMES[this.child]!;
    r.ref(name).tell(this.value);
    await settle();
    m.seen[name].push(this.value);
    expectSame(m, r);
  }
  toString(): string {
    return `tell ${NAMES[this.child]} ${this.value}`;
  }
}

/** Moves time by a plain amount. */
class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    await r.clock.advance(this.ms);
    m.now += this.ms;
  }
  toString(): string {
    return `advance ${this.ms} ms`;
  }
}

/** Moves time to exactly where the oldest counted restart leaves the window, give or take 1 ms. */
class ToWindowEdge implements fc.AsyncCommand<Model, Real> {
  constructor(readonly offset: -1 | 0 | 1) {}
  check(m: Readonly<Model>): boolean {
    const oldest = m.restarts.find((t) => t >= m.now - m.config.withinMs);
    return oldest !== undefined && oldest + m.config.withinMs + this.offset > m.now;
  }
  async run(m: Model, r: Real): Promise<void> {
    const oldest = m.restarts.find((t) => t >= m.now - m.config.withinMs)!;
    const to = oldest + m.config.withinMs + this.offset;
    await r.clock.advance(to - m.now);
    m.now = to;
  }
  toString(): string {
    return `to the window's edge ${this.offset < 0 ? '- 1 ms' : this.offset > 0 ? '+ 1 ms' : 'exactly'}`;
  }
}

const child = fc.integer({ min: 0, max: 2 });
const commands = fc.commands(
  [
    fc.tuple(child, fc.constantFrom('crash' as const, 'normal' as const)).map(([c, how]) => new Exit(c, how)),
    fc.tuple(child, fc.integer({ min: 0, max: 99 })).map(([c, v]) => new Tell(c, v)),
    fc.integer({ min: 1, max: 3_000 }).map((ms) => new Advance(ms)),
    fc.constantFrom(-1 as const, 0 as const, 1 as const).map((o) => new ToWindowEdge(o)),
  ],
  { maxCommands: 30 },
);

const config = fc.record({
  kind: fc.constantFrom<Kind>('one-for-one', 'one-for-all', 'rest-for-one'),
  restart: fc.constantFrom<RestartType>('permanent', 'transient', 'temporary'),
  maxRestarts: fc.integer({ min: 0, max: 4 }),
  withinMs: fc.integer({ min: 1, max: 2_000 }),
});

describe('a supervisor against its model', () => {
  it('restarts the strategy’s set, counts intensity to the millisecond at the window’s edges, and escalates exactly once', () =>
    checkProperty(
      fc.asyncProperty(config, commands, async (c, cmds) => {
        const real = tree(KINDS[c.kind]({ maxRestarts: c.maxRestarts, withinMs: c.withinMs }), c.restart);
        await settle();
        const model: Model = {
          config: c,
          now: 0,
          restarts: [],
          alive: { a: true, b: true, c: true },
          starts: { a: 1, b: 1, c: 1 },
          seen: { a: [], b: [], c: [] },
          restartedEvents: [],
          escalated: false,
        };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await real.system.shutdown();
      }),
      { numRuns: 1_000 },
    ));
});
