import { BatonError, describe } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import { current, exhausted, NOTHING_SPENT, spend, windowEnds, type BudgetPolicy, type Cost, type Spending } from '../policies/budget.js';

/** Counting without a limit: one window that never ends (lifetime totals, for stats). */
const FOREVER = { perMs: Infinity };

/**
 * What a stage's runs spent (`ctx.spend`) and, with a `budget`, whether it may run more. Owns the
 * spending of the current window and whether its exhaustion was announced. The decisions are the pure
 * functions of policies/budget.ts. Made when the agent has a budget, or at its first spend.
 */
export class StageBudget {
  private spending: Spending = NOTHING_SPENT;
  /** The window whose exhaustion was announced (its `since`); NaN: none yet. */
  private announced = Number.NaN;

  constructor(
    private readonly path: string,
    readonly policy: BudgetPolicy | undefined,
    private readonly events: EventStream,
    /** The pipeline's budget, which every stage's spends count against too (spawnPipeline({ budget })). */
    private readonly shared?: StageBudget,
    /** With a journal: where the spending of the current window is kept across a restart. */
    private readonly keeper?: BudgetKeeper,
  ) {}

  /** A save is due at the end of this turn (one per turn, however many runs spent). */
  private saving = false;
  /** The clock reading of the last spend, for the save's wall-clock conversion. */
  private spentAt = 0;

  /**
   * At start, with a journal: the spending the previous process kept, if its window is still open,
   * so a restart does not give a spent budget a fresh window. Call once, before any spend.
   */
  restore(now: number): void {
    const text = this.keeper?.load();
    const policy = this.policy;
    if (text === undefined || policy === undefined) return;
    // A value this version did not write (or a damaged one) is ignored: the window starts afresh, as before.
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return;
    }
    const toClock = now - this.keeper!.wallNow();
    if (policy.perKey) {
      // { perKey: [[key or null, tokens, usd, since (wall ms)], ...] }: the keys with an open window.
      const list = (v as { perKey?: unknown } | null)?.perKey;
      if (!Array.isArray(list)) return;
      for (const e of list) {
        if (!Array.isArray(e) || e.length !== 4 || (e[0] !== null && typeof e[0] !== 'string') || !isAmounts(e.slice(1))) continue;
        const s = current(policy, { tokens: e[1] as number, usd: e[2] as number, since: (e[3] as number) + toClock }, now);
        if (s !== NOTHING_SPENT) this.byKey.set((e[0] as string | null) ?? undefined, s);
      }
      return;
    }
    if (!Array.isArray(v) || v.length !== 3 || !isAmounts(v)) return;
    const [tokens, usd, sinceWall] = v as [number, number, number];
    this.spending = current(policy, { tokens, usd, since: sinceWall + toClock }, now);
  }

  private keepSoon(now: number): void {
    this.spentAt = now;
    if (this.saving) return;
    this.saving = true;
    queueMicrotask(() => {
      this.saving = false;
      const keeper = this.keeper!;
      // Clock ms -> wall ms: both moved on together since the spend that asked for this save.
      const toWall = keeper.wallNow() - this.spentAt;
      if (this.policy?.perKey === true) {
        // One value for every key with an open window (at most ~1,024 after forgetEnded), once per turn.
        const list: [string | null, number, number, number][] = [];
        for (const [key, s] of this.byKey) if (s.since !== -Infinity) list.push([key ?? null, s.tokens, s.usd, Math.max(0, s.since + toWall)]);
        keeper.save(list.length === 0 ? null : JSON.stringify({ perKey: list }));
        return;
      }
      const s = this.spending;
      keeper.save(s.since === -Infinity ? null : JSON.stringify([s.tokens, s.usd, Math.max(0, s.since + toWall)]));
    });
  }

  /** Spending per key, for a budget with `perKey` (keys whose window ended are dropped as they are met). */
  private readonly byKey = new Map<string | undefined, Spending>();

  /** A run reports its cost. A cost that is not a pair of numbers >= 0 is the handler's bug: ERR_INVALID_OPTION. */
  spend(cost: Cost, now: number, key?: string): void {
    if (cost === null || typeof cost !== 'object') throw badCost(this.path, cost);
    for (const k of ['tokens', 'usd'] as const) {
      const v = cost[k];
      if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw badCost(this.path, cost);
    }
    if (this.policy?.perKey === true) {
      // The agent's total is for stats only (a window that never ends); each key has its own window.
      this.spending = spend(FOREVER, this.spending, cost, now);
      this.byKey.set(key, spend(this.policy, this.byKey.get(key) ?? NOTHING_SPENT, cost, now));
      if (this.byKey.size > 1_024) this.forgetEnded(now);
      if (this.keeper !== undefined) this.keepSoon(now);
    } else {
      this.spending = spend(this.policy ?? FOREVER, this.spending, cost, now);
      if (this.keeper !== undefined && this.policy !== undefined) this.keepSoon(now);
    }
    this.shared?.spend(cost, now);
  }

  /**
   * What a spent budget asks of a run that would start now: 'hold' or 'dead-letter' (the agent's own
   * budget first, then the pipeline's), or undefined when neither is spent. Announced once per window.
   */
  blocking(now: number): 'hold' | 'dead-letter' | undefined {
    if (this.blocks(now)) return this.policy!.onExhausted;
    return this.shared?.blocking(now);
  }

  /** When a run may start again: the latest reset among the budgets spent now (Infinity if none is). */
  blockedUntil(now: number): number {
    const own = this.spentOut(now) ? this.resetsAt() : -Infinity;
    const shared = this.shared?.spentOut(now) === true ? this.shared.resetsAt() : -Infinity;
    const until = Math.max(own, shared);
    return until === -Infinity ? Infinity : until;
  }

  /**
   * A budget per key: what it asks of a run of `key` that would start now ('hold', 'dead-letter'), or
   * undefined when that key may spend. Announced once per key and window.
   */
  keyBlocking(now: number, key: string | undefined): 'hold' | 'dead-letter' | undefined {
    const policy = this.policy;
    if (policy?.perKey !== true) return undefined;
    const s = this.byKey.get(key);
    if (s === undefined || !exhausted(policy, s, now)) return undefined;
    if (this.announcedKeys.get(key) !== s.since) {
      this.announcedKeys.set(key, s.since);
      this.events.emit({ type: 'budget-exhausted', path: this.path, at: now, resetsAt: windowEnds(policy, s), onExhausted: policy.onExhausted, key });
    }
    return policy.onExhausted;
  }

  /** When `key`'s window ends (its spending starts again), or Infinity. */
  keyResetsAt(key: string | undefined): number {
    const s = this.byKey.get(key);
    return this.policy === undefined || s === undefined ? Infinity : windowEnds(this.policy, s);
  }

  private readonly announcedKeys = new Map<string | undefined, number>();

  /** Drops keys whose window has ended (they hold nothing: their next spend starts a new one). */
  private forgetEnded(now: number): void {
    for (const [key, s] of this.byKey) {
      if (current(this.policy!, s, now) === NOTHING_SPENT) {
        this.byKey.delete(key);
        this.announcedKeys.delete(key);
      }
    }
  }

  /** The budget is spent at `now`: no run may start (announced once per window). */
  blocks(now: number): boolean {
    const policy = this.policy;
    if (policy === undefined || policy.perKey || !exhausted(policy, this.spending, now)) return false;
    const since = current(policy, this.spending, now).since;
    if (this.announced !== since) {
      this.announced = since;
      this.events.emit({ type: 'budget-exhausted', path: this.path, at: now, resetsAt: windowEnds(policy, this.spending), onExhausted: policy.onExhausted });
    }
    return true;
  }

  /** Whether the budget is spent at `now` (no event: for stats). A budget per key is never spent as a whole. */
  spentOut(now: number): boolean {
    return this.policy !== undefined && !this.policy.perKey && exhausted(this.policy, this.spending, now);
  }

  /** When spending starts again from 0 (Infinity without a budget or a spend). */
  resetsAt(): number {
    return this.policy === undefined ? Infinity : windowEnds(this.policy, this.spending);
  }

  /** Spent in the current window (all time, without a budget or with one per key). */
  spent(now: number): { readonly tokens: number; readonly usd: number } {
    const c = current(this.policy === undefined || this.policy.perKey ? FOREVER : this.policy, this.spending, now);
    return { tokens: c.tokens, usd: c.usd };
  }

  /** A budget per key: each key's spending in its current window (keys that spent nothing in one are left out). */
  spentByKey(now: number): { readonly key: string | undefined; readonly tokens: number; readonly usd: number }[] {
    if (this.policy?.perKey !== true) return [];
    const out: { key: string | undefined; tokens: number; usd: number }[] = [];
    for (const [key, s] of this.byKey) {
      const c = current(this.policy, s, now);
      if (c !== NOTHING_SPENT) out.push({ key, tokens: c.tokens, usd: c.usd });
    }
    return out;
  }
}

/** Numbers a kept spending is made of: finite and >= 0. */
function isAmounts(v: readonly unknown[]): boolean {
  return v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0);
}

function badCost(path: string, cost: unknown): BatonError {
  return new BatonError('ERR_INVALID_OPTION', `ctx.spend(cost) at stage '${path}' needs { tokens?, usd? }, each a number >= 0; got ${describe(cost)}.`, { stage: path });
}

/** Where a budget keeps its spending across a restart: a journal's state value, in wall-clock ms. */
export interface BudgetKeeper {
  load(): string | undefined;
  save(value: string | null): void;
  wallNow(): number;
}
