import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { oneForAll, oneForOne, restForOne, type BackoffOptions, type RestartType } from '../../system/index.js';
import { checkProperty } from '../../testkit/index.js';
import { tree, type Name } from '../support/abc-tree.js';
import { settle } from '../support/helpers.js';

/**
 * Model-based tests of a supervisor over children a, b, c: fast-check generates sequences of
 * crashes, normal exits, messages and clock steps (many of them landing exactly on the intensity
 * window's edges, or on the instant a backed-off restart is due), runs them against the real
 * supervisor on simulated time, and after each one compares it with a model that is much simpler
 * than the system: a list of restart times, the state of each child (running, waiting for its
 * restart, ended), the restarts that are due and when, how often each child started, what each saw.
 *
 * The one place the model only observes: with a jittered restart backoff it cannot know the exact
 * delay, so it knows a window [earliest, latest] per pending restart (the documented range of
 * `calculateDelay` for that step) and checks that the real restart happened inside it, and had
 * happened by the time the clock passed `latest`.
 */
const NAMES: readonly Name[] = ['a', 'b', 'c'];
const KINDS = { 'one-for-one': oneForOne, 'one-for-all': oneForAll, 'rest-for-one': restForOne } as const;
type Kind = keyof typeof KINDS;

interface Backoff {
  readonly minMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;
}

interface Config {
  readonly kind: Kind;
  readonly restart: RestartType;
  readonly maxRestarts: number;
  readonly withinMs: number;
  /** Absent: no backoff, every restart happens at once, as in OTP. */
  readonly backoff?: Backoff;
  readonly resetAfterMs?: number;
}

type State = 'running' | 'down' | 'ended';

/** One restart decision whose children have not all come back yet. */
interface Pending {
  /** Children it will restart, in start order (a later decision that includes one takes it over). */
  names: Name[];
  /** The earliest and latest instant the restart may happen. */
  readonly earliest: number;
  readonly latest: number;
  readonly step: number;
}

interface Model {
  readonly config: Config;
  now: number;
  /** Times of the restarts the supervisor counted, oldest first. */
  restarts: number[];
  state: Record<Name, State>;
  pending: Pending[];
  /** Backoff step: consecutive restarts with no quiet period of more than resetAfterMs. */
  step: number;
  lastRestartAt: number;
  starts: Record<Name, number>;
  seen: Record<Name, number[]>;
  /** Messages told to a child while it waits for its restart: it handles them once restarted. */
  queued: Record<Name, number[]>;
  restartedEvents: string[];
  /** How many of the real system's `restarted` events the model has accounted for. */
  observed: number;
  escalated: boolean;
}

type Real = ReturnType<typeof tree>;

const EPSILON = 1e-6;

/** The documented range of the delay before the step-th consecutive restart (backoff.ts: calculateDelay). */
function delayRange(b: Backoff | undefined, step: number): { lo: number; hi: number } {
  if (b === undefined || b.minMs === 0 || b.maxMs === 0) return { lo: 0, hi: 0 };
  const base = Math.min(b.maxMs, b.minMs * Math.pow(b.factor, step - 1));
  return { lo: Math.max(0, base * (1 - b.jitter)), hi: Math.min(b.maxMs, base * (1 + b.jitter)) };
}

/**
 * Accounts for every restart the real supervisor made since the last look: each must be of a child
 * the model has waiting, inside its window, in start order within its decision; and every restart
 * whose window has passed must have happened.
 */
function observe(m: Model, r: Real): void {
  const restarted = r.events.flatMap((e) => (e.type === 'restarted' ? [e] : []));
  for (const e of restarted.slice(m.observed)) {
    const name = e.path.slice('sup/'.length) as Name;
    const entry = m.pending.find((p) => p.names.includes(name));
    if (entry === undefined) expect.fail(`${name} was restarted at ${e.at} ms while the model has it ${m.state[name]}, with no restart pending`);
    const jitter = m.config.backoff?.jitter ?? 0;
    const slack = jitter === 0 ? 0 : EPSILON;
    expect(e.at, `${name}'s restart (step ${entry.step}) within [${entry.earliest}, ${entry.latest}]`).toBeGreaterThanOrEqual(entry.earliest - slack);
    expect(e.at, `${name}'s restart (step ${entry.step}) within [${entry.earliest}, ${entry.latest}]`).toBeLessThanOrEqual(entry.latest + slack);
    if (entry.names[0] !== name) {
      expect.fail(`${name} was restarted at ${e.at} ms while ${entry.names.slice(0, entry.names.indexOf(name)).join(', ')}, restarted before it by the same decision (${entry.names.join(', ')}), is still down`);
    }
    entry.names.shift();
    m.lastRestartAt = Math.max(m.lastRestartAt, e.at);
    m.state[name] = 'running';
    m.starts[name]++;
    m.restartedEvents.push(e.path);
    m.seen[name].push(...m.queued[name]);
    m.queued[name] = [];
  }
  m.observed = restarted.length;
  for (const p of m.pending) {
    const overdue = (m.config.backoff?.jitter ?? 0) === 0 ? p.latest <= m.now : p.latest + EPSILON < m.now;
    if (overdue && p.names.length > 0) expect.fail(`at ${m.now} ms ${p.names.join(', ')} should have been restarted (due within [${p.earliest}, ${p.latest}])`);
  }
  m.pending = m.pending.filter((p) => p.names.length > 0);
}

function expectSame(m: Model, r: Real): void {
  observe(m, r);
  expect(r.starts, 'starts per child').toEqual(m.starts);
  expect(r.seen, 'messages each child handled').toEqual(m.seen);
  expect(r.restarted(), 'restarted events, in order').toEqual(m.restartedEvents);
  expect(r.events.filter((e) => e.type === 'escalated').length, 'escalations').toBe(m.escalated ? 1 : 0);
}

/** A running child exits (crash or normal); the model decides as OTP would, plus the backoff. */
class Exit implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly child: number,
    readonly how: 'crash' | 'normal',
  ) {}
  check(m: Readonly<Model>): boolean {
    return !m.escalated && m.state[NAMES[this.child]!] === 'running';
  }
  async run(m: Model, r: Real): Promise<void> {
    const name = NAMES[this.child]!;
    r.ref(name).tell(this.how === 'crash' ? 'crash' : 'stop');
    await settle();
    const { restart, kind, maxRestarts, withinMs, backoff, resetAfterMs = 30_000 } = m.config;
    const restarts = restart === 'permanent' || (restart === 'transient' && this.how === 'crash');
    if (!restarts) {
      m.state[name] = 'ended';
    } else {
      const inWindow = m.restarts.filter((t) => t >= m.now - withinMs).length;
      if (inWindow + 1 > maxRestarts) {
        m.escalated = true;
        for (const n of NAMES) m.state[n] = 'ended';
        m.pending = [];
      } else {
        m.restarts.push(m.now);
        // The quiet period runs from the last restart the supervisor made (observe() notes it).
        m.step = m.now - m.lastRestartAt > resetAfterMs ? 1 : m.step + 1;
        const from = NAMES.indexOf(name);
        const set = (kind === 'one-for-one' ? [name] : kind === 'one-for-all' ? [...NAMES] : NAMES.slice(from)).filter((n) => m.state[n] !== 'ended');
        // A child already waiting for an earlier decision's restart comes back once, with this set.
        for (const p of m.pending) p.names = p.names.filter((n) => !set.includes(n));
        for (const n of set) m.state[n] = 'down';
        const { lo, hi } = delayRange(backoff, m.step);
        m.pending.push({ names: set, earliest: m.now + lo, latest: m.now + hi, step: m.step });
      }
    }
    expectSame(m, r);
  }
  toString(): string {
    return `${NAMES[this.child]} ${this.how === 'crash' ? 'crashes' : 'exits'}`;
  }
}

/** A message to a child that is running (handled now) or waiting for its restart (handled once restarted). */
class Tell implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly child: number,
    readonly value: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return !m.escalated && m.state[NAMES[this.child]!] !== 'ended';
  }
  async run(m: Model, r: Real): Promise<void> {
    const name = NAMES[this.child]!;
    expect(r.ref(name).tell(this.value)).toBe('enqueued');
    await settle();
    (m.state[name] === 'running' ? m.seen : m.queued)[name].push(this.value);
    expectSame(m, r);
  }
  toString(): string {
    return `tell ${NAMES[this.child]} ${this.value}`;
  }
}

async function advanceTo(m: Model, r: Real, to: number): Promise<void> {
  await r.clock.advance(to - m.now);
  m.now = to;
  expectSame(m, r);
}

/** Moves time by a plain amount. */
class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    await advanceTo(m, r, m.now + this.ms);
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
    await advanceTo(m, r, oldest + m.config.withinMs + this.offset);
  }
  toString(): string {
    return `to the window's edge ${this.offset < 0 ? '- 1 ms' : this.offset > 0 ? '+ 1 ms' : 'exactly'}`;
  }
}

/** Moves time to the edges of the next backed-off restart: 1 ms before it can happen, its earliest, its latest instant. */
class ToRestartDue implements fc.AsyncCommand<Model, Real> {
  constructor(readonly where: 'before' | 'earliest' | 'latest') {}
  private target(m: Readonly<Model>): number | undefined {
    const next = [...m.pending].sort((x, y) => x.earliest - y.earliest)[0];
    if (next === undefined) return undefined;
    return this.where === 'before' ? Math.ceil(next.earliest) - 1 : this.where === 'earliest' ? Math.ceil(next.earliest) : Math.ceil(next.latest);
  }
  check(m: Readonly<Model>): boolean {
    const to = this.target(m);
    return !m.escalated && to !== undefined && to > m.now;
  }
  async run(m: Model, r: Real): Promise<void> {
    await advanceTo(m, r, this.target(m)!);
  }
  toString(): string {
    return `to ${this.where === 'before' ? '1 ms before the next restart can happen' : `the next restart's ${this.where} instant`}`;
  }
}

const child = fc.integer({ min: 0, max: 2 });
const baseCommands = [
  fc.tuple(child, fc.constantFrom('crash' as const, 'normal' as const)).map(([c, how]) => new Exit(c, how)),
  fc.tuple(child, fc.integer({ min: 0, max: 99 })).map(([c, v]) => new Tell(c, v)),
  fc.integer({ min: 1, max: 3_000 }).map((ms) => new Advance(ms)),
  fc.constantFrom(-1 as const, 0 as const, 1 as const).map((o) => new ToWindowEdge(o)),
];
/**
 * fast-check replays a run of commands only with the commands' own replay path, printed in the
 * counterexample as `replayPath="..."`: pass it as BATON_COMMANDS_REPLAY beside BATON_REPLAY.
 */
const replayPath = process.env['BATON_REPLAY'] ? process.env['BATON_COMMANDS_REPLAY'] : undefined;
const commands = fc.commands(baseCommands, { maxCommands: 30, ...(replayPath ? { replayPath } : {}) });
/** With a backoff most children are down most of the time: exits and steps to the restarts' edges come more often. */
const toRestartDue = fc.constantFrom('before' as const, 'earliest' as const, 'latest' as const).map((w) => new ToRestartDue(w));
const backoffCommands = fc.commands([baseCommands[0]!, baseCommands[0]!, ...baseCommands, toRestartDue, toRestartDue, toRestartDue], { maxCommands: 40, size: 'max', ...(replayPath ? { replayPath } : {}) });

const intensityConfig = {
  kind: fc.constantFrom<Kind>('one-for-one', 'one-for-all', 'rest-for-one'),
  restart: fc.constantFrom<RestartType>('permanent', 'transient', 'temporary'),
  maxRestarts: fc.integer({ min: 0, max: 4 }),
  withinMs: fc.integer({ min: 1, max: 2_000 }),
};
const config: fc.Arbitrary<Config> = fc.record(intensityConfig);
const backoffConfig: fc.Arbitrary<Config> = fc.record({
  ...intensityConfig,
  restart: fc.constantFrom<RestartType>('permanent', 'permanent', 'transient', 'temporary'),
  maxRestarts: fc.integer({ min: 0, max: 6 }),
  withinMs: fc.integer({ min: 1, max: 5_000 }),
  backoff: fc
    .record({
      minMs: fc.integer({ min: 1, max: 400 }),
      extraMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000 })),
      factor: fc.constantFrom(1, 2, 3),
      jitter: fc.constantFrom(0, 0, 0.2, 0.5, 1),
    })
    .map(({ minMs, extraMs, factor, jitter }) => ({ minMs, maxMs: minMs + extraMs, factor, jitter })),
  resetAfterMs: fc.oneof(fc.constantFrom(0, 30_000), fc.integer({ min: 0, max: 3_000 })),
});

async function runModel(c: Config, cmds: Iterable<fc.AsyncCommand<Model, Real>>): Promise<void> {
  const strategy = KINDS[c.kind]({
    maxRestarts: c.maxRestarts,
    withinMs: c.withinMs,
    ...(c.backoff ? { backoff: c.backoff satisfies BackoffOptions } : {}),
    ...(c.resetAfterMs !== undefined ? { resetAfterMs: c.resetAfterMs } : {}),
  });
  const real = tree(strategy, c.restart);
  await settle();
  const model: Model = {
    config: c,
    now: 0,
    restarts: [],
    state: { a: 'running', b: 'running', c: 'running' },
    pending: [],
    step: 0,
    lastRestartAt: -Infinity,
    starts: { a: 1, b: 1, c: 1 },
    seen: { a: [], b: [], c: [] },
    queued: { a: [], b: [], c: [] },
    restartedEvents: [],
    observed: 0,
    escalated: false,
  };
  try {
    await fc.asyncModelRun(() => ({ model, real }), cmds);
  } finally {
    await real.system.shutdown();
  }
}

/** checkProperty, with the commands' replay path added to the replay command it prints. */
async function checkModel(property: fc.IAsyncProperty<[Config, Iterable<fc.AsyncCommand<Model, Real>>]>, numRuns: number): Promise<void> {
  try {
    await checkProperty(property, { numRuns });
  } catch (e) {
    const path = /replayPath="([^"]*)"/.exec((e as Error).message)?.[1];
    if (path !== undefined) (e as Error).message = (e as Error).message.replace('Replay just this counterexample: ', `Replay just this counterexample: BATON_COMMANDS_REPLAY='${path}' `);
    throw e;
  }
}

describe('a supervisor against its model', () => {
  it('restarts the strategy’s set, counts intensity to the millisecond at the window’s edges, and escalates exactly once', () =>
    checkModel(fc.asyncProperty(config, commands, runModel), 700));

  it('with a restart backoff, restarts each child once per decision, no sooner and no later than the backoff range of its step allows', () =>
    checkModel(fc.asyncProperty(backoffConfig, backoffCommands, runModel), 300));
});
