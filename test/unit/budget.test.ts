import { describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, simulatedClock, type BudgetOptions } from '../../system/index.js';
import { ofType, range } from '../support/agent-kit.js';
import { collect, drainOn, settle } from '../support/helpers.js';

/** One stage whose every run costs `tokens` (reported with ctx.spend) and takes 10 ms. */
function spender(budget: BudgetOptions | undefined, tokens: number, options: { concurrency?: number; journaled?: boolean } = {}) {
  const clock = simulatedClock();
  const system = createSystem({ logger: false, clock, random: 1, ...(options.journaled ? { journal: memoryJournal() } : {}) });
  const events: import('../../system/index.js').BatonEvent[] = [];
  system.events.on((e) => events.push(e));
  const runs: number[] = [];
  const pipe = system.spawnPipeline<number, number>({
    name: 'p',
    stages: [agent({
      name: 'llm',
      concurrency: options.concurrency ?? 1,
      ...(budget ? { budget } : {}),
      handle: async (x: number, ctx) => {
        runs.push(clock.now());
        await new Promise<void>((r) => clock.setTimer(10, r));
        ctx.spend({ tokens, usd: tokens / 1_000 });
        return x;
      },
    })],
  });
  return { system, clock, pipe, runs, events, outcomes: collect(pipe) };
}

describe("an agent's budget", () => {
  it('holds its tasks once the window is spent and runs them in the next window; nothing is dead-lettered', async () => {
    const { pipe, clock, runs, events, outcomes } = spender({ tokens: 1_000, perMs: 60_000 }, 300);
    await pipe.sendMany(range(10));
    await clock.advance(1_000);
    await settle();
    expect(runs).toHaveLength(4); // 0, 300, 600, 900 spent before each: the 4th run spends it past 1,000
    expect(pipe.stats().stages[0]).toMatchObject({ spent: { tokens: 1_200 }, budgetResetsAt: 10 + 60_000 });
    expect(ofType(events, 'budget-exhausted')).toMatchObject([{ path: 'p/llm', resetsAt: 60_010, onExhausted: 'hold' }]);
    await drainOn(clock, pipe, 600_000, 100);
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
    expect(runs.filter((t) => t < 60_010)).toHaveLength(4);
    expect(runs.filter((t) => t >= 60_010 && t < 120_020)).toHaveLength(4);
  });

  it('is overspent by at most the runs in flight when it ran out', async () => {
    const { pipe, clock, runs } = spender({ tokens: 1_000, perMs: 60_000 }, 300, { concurrency: 3 });
    await pipe.sendMany(range(10));
    await clock.advance(1_000);
    await settle();
    const spent = pipe.stats().stages[0]!.spent!.tokens;
    expect(spent).toBeLessThanOrEqual(1_000 + 3 * 300);
    expect(runs.length).toBeLessThanOrEqual(Math.ceil(1_000 / 300) + 3);
  });

  it("dead-letters with ERR_BUDGET_EXHAUSTED when onExhausted is 'dead-letter'", async () => {
    const { pipe, clock, outcomes } = spender({ usd: 1, perMs: 3_600_000, onExhausted: 'dead-letter' }, 400);
    await pipe.sendMany(range(5));
    await drainOn(clock, pipe, 60_000, 10);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(3); // $0.4, $0.8, $1.2
    expect(outcomes.filter((o) => o.status === 'dead-lettered')).toMatchObject([{ error: { code: 'ERR_BUDGET_EXHAUSTED' } }, { error: { code: 'ERR_BUDGET_EXHAUSTED' } }]);
  });

  it('holds on a journaled stage too', async () => {
    const { pipe, clock, runs } = spender({ tokens: 500, perMs: 10_000 }, 300, { journaled: true });
    await pipe.sendMany(range(4));
    await drainOn(clock, pipe, 600_000, 50);
    expect(runs.filter((t) => t < 10_000)).toHaveLength(2);
  });

  it('counts spending in stats without a budget, and refuses bad budgets and bad costs', async () => {
    const { pipe, clock } = spender(undefined, 7);
    await pipe.sendMany(range(3));
    await drainOn(clock, pipe, 60_000, 10);
    expect(pipe.stats().stages[0]!.spent).toEqual({ tokens: 21, usd: 0.021 });
    const system = createSystem({ logger: false });
    const bad = (budget: unknown) => {
      try {
        system.spawnPipeline({ name: `b${Math.floor(Math.random() * 1e9)}`, stages: [agent({ name: 'a', handle: (x: number) => x, budget: budget as BudgetOptions })] });
      } catch (err) {
        return isBatonError(err) ? err.message : 'other';
      }
      return 'accepted';
    };
    expect(bad({ perMs: 1_000 })).toMatch(/a limit: tokens, usd or both/);
    expect(bad({ tokens: 10 })).toMatch(/budget.perMs/);
    expect(bad({ tokens: -1, perMs: 1 })).toMatch(/budget.tokens/);
    expect(bad({ tokens: 1, perMs: 1, onExhausted: 'panic' })).toMatch(/onExhausted/);
    const sys2 = createSystem({ logger: false });
    const p2 = sys2.spawnPipeline<number, number>({ name: 'c', stages: [agent({ name: 'a', retry: { maxAttempts: 1 }, handle: (x: number, ctx) => (ctx.spend({ tokens: Number.NaN }), x) })] });
    const out = collect(p2);
    await p2.send(1);
    await p2.drain();
    expect(out[0]).toMatchObject({ status: 'dead-lettered', error: { message: expect.stringMatching(/ctx.spend\(cost\)/) } });
  });
});

describe("a pipeline's budget (spawnPipeline({ budget }))", () => {
  /** Two stages that each spend `tokens` per run (10 ms of model time), under one pipeline budget. */
  function twoSpenders(budget: BudgetOptions, tokens: number) {
    const clock = simulatedClock();
    const system = createSystem({ logger: false, clock, random: 1 });
    const runs: [string, number][] = [];
    const stage = (name: string) =>
      agent({
        name,
        handle: async (x: number, ctx) => {
          runs.push([name, clock.now()]);
          await new Promise<void>((r) => clock.setTimer(10, r));
          ctx.spend({ tokens });
          return x;
        },
      });
    const pipe = system.spawnPipeline<number, number>({ name: 'tenant-a', stages: [stage('draft'), stage('review')], budget });
    return { clock, pipe, runs, outcomes: collect(pipe) };
  }

  it('counts every stage\'s spending against one budget and holds every stage once it is spent, until the next window', async () => {
    const { pipe, clock, runs, outcomes } = twoSpenders({ tokens: 1_000, perMs: 60_000 }, 250);
    await pipe.sendMany(range(4));
    await clock.advance(1_000);
    await settle();
    // Runs of 250 spend the 1,000, draft and review alike; then no run starts in this window. The two
    // stages run at once, so one run more may be in flight when it runs out: at most 1,000 + 250 + 250.
    const first = runs.filter(([, t]) => t < 60_000);
    expect(first.length).toBeGreaterThanOrEqual(4);
    expect(first.length).toBeLessThanOrEqual(5);
    const spent = pipe.stats().budget!.spent.tokens;
    expect(spent).toBe(250 * first.length);
    expect(pipe.stats().budget!.resetsAt).toBeGreaterThanOrEqual(60_000);
    expect(pipe.stats().stages.map((s) => s.spent?.tokens ?? 0).reduce((a, b) => a + b)).toBe(spent);
    await drainOn(clock, pipe, 600_000, 100);
    expect(outcomes.map((o) => o.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(runs).toHaveLength(8);
  });

  it("dead-letters with ERR_BUDGET_EXHAUSTED at whichever stage meets it spent, with 'dead-letter'", async () => {
    const { pipe, clock, outcomes } = twoSpenders({ tokens: 500, perMs: 3_600_000, onExhausted: 'dead-letter' }, 250);
    await pipe.sendMany(range(3));
    await drainOn(clock, pipe, 60_000, 10);
    expect(outcomes.filter((o) => o.status === 'completed').length).toBeGreaterThanOrEqual(1);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered');
    expect(dead.length).toBeGreaterThanOrEqual(1);
    expect(dead.every((o) => o.status === 'dead-lettered' && o.error.code === 'ERR_BUDGET_EXHAUSTED')).toBe(true);
    expect(dead[0]!.status === 'dead-lettered' && dead[0]!.error.message).toMatch(/its own or its pipeline's/);
  });

  it('is refused when malformed, naming the pipeline', () => {
    const system = createSystem({ logger: false });
    let err: unknown;
    try {
      system.spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })], budget: { tokens: -1, perMs: 1_000 } });
    } catch (e) {
      err = e;
    }
    expect(isBatonError(err) && err.code).toBe('ERR_INVALID_OPTION');
    expect(String((err as Error).message)).toContain("pipeline 'p'.budget.tokens");
  });
});

describe('budgets across a restart (with a journal)', () => {
  /** One "process" on `journal`, its own simulated clock; a stage that spends 400 tokens a run (10 ms). */
  function proc(journal: ReturnType<typeof memoryJournal>, budgets: { agent?: BudgetOptions; pipeline?: BudgetOptions }) {
    const clock = simulatedClock();
    const system = createSystem({ logger: false, clock, random: 1, journal });
    const runs: number[] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'llm', ...(budgets.agent ? { budget: budgets.agent } : {}), handle: async (x: number, ctx) => {
        runs.push(clock.now());
        await new Promise<void>((r) => clock.setTimer(10, r));
        ctx.spend({ tokens: 400 });
        return x;
      } })],
      ...(budgets.pipeline ? { budget: budgets.pipeline } : {}),
    });
    return { system, clock, pipe, runs };
  }

  it.each([
    ['an agent\'s budget', { agent: { tokens: 1_000, perMs: 3_600_000 } }],
    ['a pipeline\'s budget', { pipeline: { tokens: 1_000, perMs: 3_600_000 } }],
  ] as const)('keeps the spending of %s, so a restart does not open a fresh window', async (_name, budgets) => {
    let wall = 5_000_000;
    const journal = memoryJournal({ now: () => wall });
    const first = proc(journal, budgets);
    await first.pipe.sendMany(range(6));
    await first.clock.advance(1_000);
    await settle();
    expect(first.runs).toHaveLength(3); // 400, 800, 1,200: spent after the third
    await first.system.shutdown({ drainMs: 0 });
    expect(journal.openPipeline('p').counts()).toEqual({ pending: 3, completed: 3, dead: 0 });
    wall += 60_000; // a minute later, well inside the hour
    const second = proc(journal, budgets);
    await second.clock.advance(60_000);
    await settle();
    // The 3 tasks left are recovered and held: the window the first process spent is still open.
    const spent = 'agent' in budgets ? second.pipe.stats().stages[0]!.spent : second.pipe.stats().budget!.spent;
    expect(spent).toMatchObject({ tokens: 1_200 });
    expect(second.runs).toEqual([]); // without the kept spending, 2 of them would run now
    await second.clock.advance(3_600_000);
    await settle();
    expect(second.runs.length, JSON.stringify({ s: second.pipe.stats().stages[0], b: second.pipe.stats().budget, now: second.clock.now() })).toBeGreaterThan(0); // the next window
    void second.system.shutdown({ drainMs: 0 });
  });

  it('keeps each tenant\'s spending with a budget per key: a spent tenant stays held after the restart, another runs', async () => {
    let wall = 5_000_000;
    const journal = memoryJournal({ now: () => wall });
    const budget = { tokens: 1_000, perMs: 3_600_000, perKey: true } as const;
    const first = proc(journal, { agent: budget });
    for (let i = 0; i < 6; i++) await first.pipe.send(i, { key: 'big', id: `big${i}` });
    await first.pipe.send(0, { key: 'small', id: 'small0' });
    await first.clock.advance(1_000);
    await settle();
    expect(first.runs).toHaveLength(4); // big x3 (1,200: spent), small x1 (400)
    await first.system.shutdown({ drainMs: 0 });
    wall += 60_000;
    const second = proc(journal, { agent: budget });
    await second.pipe.send(1, { key: 'small', id: 'small1' });
    await second.clock.advance(60_000);
    await settle();
    const byKey = Object.fromEntries((second.pipe.stats().stages[0]!.spentByKey ?? []).map((k) => [k.key, k.tokens]));
    // 'small' had 400 kept and spends 400 more; 'big' ran nothing: its window is still spent.
    expect(byKey).toEqual({ big: 1_200, small: 800 });
    expect(second.runs).toHaveLength(1);
    void second.system.shutdown({ drainMs: 0 });
  });
});

describe('a budget per key (tenant)', () => {
  /** One stage, concurrency 2; each run of tenant `t` costs 400 tokens and takes 10 ms. */
  function tenants(onExhausted: 'hold' | 'dead-letter') {
    const clock = simulatedClock();
    const system = createSystem({ logger: false, clock, random: 1 });
    const events: import('../../system/index.js').BatonEvent[] = [];
    system.events.on((e) => events.push(e));
    const runs: [string | undefined, number][] = [];
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({
        name: 'llm',
        concurrency: 2,
        budget: { tokens: 1_000, perMs: 60_000, perKey: true, onExhausted },
        handle: async (x: number, ctx) => {
          runs.push([ctx.key, clock.now()]);
          await new Promise<void>((r) => clock.setTimer(10, r));
          ctx.spend({ tokens: 400 });
          return x;
        },
      })],
    });
    return { clock, pipe, runs, events, outcomes: collect(pipe) };
  }

  it('holds the tasks of a tenant that spent its window while other tenants go on, then runs them in its next window', async () => {
    const { clock, pipe, runs, events, outcomes } = tenants('hold');
    for (let i = 0; i < 6; i++) await pipe.send(i, { key: 'big', id: `big${i}` });
    for (let i = 0; i < 2; i++) await pipe.send(i, { key: 'small', id: `small${i}` });
    await clock.advance(1_000);
    await settle();
    const first = runs.filter(([, t]) => t < 60_000);
    // 'big' spends 400 a run: after 3 runs (1,200) it waits; 'small' runs both of its tasks meanwhile.
    expect(first.filter(([k]) => k === 'big').length).toBeLessThanOrEqual(4);
    expect(first.filter(([k]) => k === 'small')).toHaveLength(2);
    expect(outcomes.filter((o) => o.id.startsWith('small')).map((o) => o.status)).toEqual(['completed', 'completed']);
    expect(ofType(events, 'budget-exhausted')).toMatchObject([{ path: 'p/llm', key: 'big', onExhausted: 'hold' }]);
    expect(pipe.stats().stages[0]!.spentByKey).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'big' }), { key: 'small', tokens: 800, usd: 0 }]));
    await drainOn(clock, pipe, 600_000, 100);
    expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
    expect(outcomes).toHaveLength(8);
  });

  it("dead-letters only the spent tenant's tasks with 'dead-letter'", async () => {
    const { clock, pipe, outcomes } = tenants('dead-letter');
    for (let i = 0; i < 6; i++) await pipe.send(i, { key: 'big', id: `big${i}` });
    await pipe.send(0, { key: 'small', id: 'small0' });
    await drainOn(clock, pipe, 60_000, 10);
    const dead = outcomes.filter((o) => o.status === 'dead-lettered');
    expect(dead.length).toBeGreaterThanOrEqual(1);
    expect(dead.every((o) => o.id.startsWith('big') && o.status === 'dead-lettered' && o.error.code === 'ERR_BUDGET_EXHAUSTED')).toBe(true);
    expect(outcomes.find((o) => o.id === 'small0')?.status).toBe('completed');
  });

  it('is refused when perKey is not a boolean', () => {
    const system = createSystem({ logger: false });
    expect(() => system.spawnPipeline({ name: 'p', stages: [agent({ name: 'a', budget: { tokens: 1, perMs: 1, perKey: 'yes' as never }, handle: (x: number) => x })] })).toThrow(/budget\.perKey/);
  });
});
