import type { Envelope } from '../actors/envelope.js';
import type { AgentPolicy } from '../policies/agent-policy.js';
import type { Cost } from '../policies/budget.js';
import type { BudgetKeeper } from './stage-budget.js';
import { StageBudget } from './stage-budget.js';
import type { StageHost, StageStats } from './stage-host.js';
import { StageThrottle } from './stage-throttle.js';

/** What a stage's stats say of its gate. */
type GateStats = Pick<StageStats, 'throttle' | 'throttledUntil' | 'spent' | 'budgetResetsAt' | 'spentByKey'>;

/** The stats of a stage without a gate (shared: no allocation per stats call). */
const OPEN: GateStats = Object.freeze({ throttle: 'open', throttledUntil: undefined, spent: undefined, budgetResetsAt: undefined });

/**
 * What may start at a stage now, beside its concurrency: the rate limit and the hold after a
 * rate-limit refusal (the throttle), and the budget (its own and its pipeline's). Made for an agent
 * with a rateLimit or a budget, or at its first refusal or ctx.spend: a stage without either keeps
 * the hot path to one check (`gate === undefined`). Owns the throttle and the budget, each made when
 * first needed; the stage acts on what it answers (runs, timer, dead letters).
 */
export class StageGate {
  constructor(
    private readonly path: string,
    private readonly host: Pick<StageHost, 'events' | 'random'>,
    private throttle: StageThrottle | undefined,
    private budget: StageBudget | undefined,
  ) {}

  /** The gate an agent starts with: undefined without a rateLimit and a budget (its own or its pipeline's). */
  static of(path: string, policy: AgentPolicy, host: Pick<StageHost, 'events' | 'random'>, now: number, sharedBudget: StageBudget | undefined, keeper: () => BudgetKeeper | undefined): StageGate | undefined {
    const throttle = policy.rateLimit === undefined ? undefined : new StageThrottle(path, policy.rateLimit, host.events, host.random, now);
    const budget = policy.budget === undefined && sharedBudget === undefined ? undefined : new StageBudget(path, policy.budget, host.events, sharedBudget, keeper());
    return throttle === undefined && budget === undefined ? undefined : new StageGate(path, host, throttle, budget);
  }

  /** A run reported its cost (ctx.spend): counted against the budget (made now if there was none: stats show it). */
  spend(cost: Cost, key: string | undefined, now: number): void {
    (this.budget ??= new StageBudget(this.path, undefined, this.host.events)).spend(cost, now, key);
  }

  /** A server refused a run for rate: the throttle (made now if there was none) holds the inbox. */
  refused(retryAfterMs: number | undefined, now: number): void {
    (this.throttle ??= new StageThrottle(this.path, undefined, this.host.events, this.host.random, now)).refused(retryAfterMs, now);
  }

  /** `n` runs started: they take the throttle's tokens. */
  started(n: number, now: number): void {
    this.throttle?.started(n, now);
  }

  /** A run ended in a way the server took (not a rate-limit refusal). */
  ran(now: number): void {
    this.throttle?.ran(now);
  }

  /** The budget keeps its window across a restart (read back from the journal). */
  restore(now: number): void {
    this.budget?.restore(now);
  }

  /**
   * How many runs may start now (Infinity: no limit). At 0, the stage's timer is armed for the instant
   * to look again: a spent budget's window or a full bucket is waited out on it, not polled.
   */
  allowance(now: number, stage: { armTimerIfEarlier(at: number): void }): number {
    const budget = this.budget;
    if (budget !== undefined && budget.blocking(now) === 'hold') {
      stage.armTimerIfEarlier(budget.blockedUntil(now));
      return 0;
    }
    const throttle = this.throttle;
    if (throttle === undefined) return Infinity;
    const n = throttle.allowance(now);
    if (n === 0) stage.armTimerIfEarlier(throttle.nextAt(now));
    return n;
  }

  /** When the throttle lets a run start again (Infinity: now, or without one). */
  throttleNextAt(now: number): number {
    return this.throttle === undefined ? Infinity : this.throttle.nextAt(now);
  }

  /** When tasks held now may start again (the earliest of the throttle and a budget's hold), or Infinity. */
  nextOpen(now: number): number {
    let at = this.throttleNextAt(now);
    const budget = this.budget;
    if (budget !== undefined && budget.blocking(now) === 'hold') at = Math.min(at, budget.blockedUntil(now));
    return at;
  }

  /**
   * Whether `env` may run now: 'run'; 'dead-letter' (the budget, its pipeline's or its key's, is spent
   * and says so); or the instant its key's window starts again, which it waits for.
   */
  admit(env: Envelope, now: number): 'run' | 'dead-letter' | number {
    const budget = this.budget;
    if (budget === undefined) return 'run';
    if (budget.blocking(now) === 'dead-letter') return 'dead-letter';
    const ofKey = budget.keyBlocking(now, env.key);
    if (ofKey === 'dead-letter') return 'dead-letter';
    return ofKey === 'hold' ? budget.keyResetsAt(env.key) : 'run';
  }

  /** When spending starts again for a stage over budget (for the dead letter's message). */
  resetsAt(now: number): number {
    return this.budget?.blockedUntil(now) ?? now;
  }

  stats(now: number): GateStats {
    const { throttle, budget } = this;
    return {
      throttle: throttle?.status ?? 'open',
      throttledUntil: throttle?.status === 'held' ? throttle.until : undefined,
      spent: budget?.spent(now),
      budgetResetsAt: budget?.policy === undefined ? undefined : budget.spentOut(now) ? budget.resetsAt() : undefined,
      ...(budget?.policy?.perKey === true ? { spentByKey: budget.spentByKey(now) } : {}),
    };
  }
}

/** A stage's gate stats, or an open gate's. */
export function gateStats(gate: StageGate | undefined, now: number): GateStats {
  return gate === undefined ? OPEN : gate.stats(now);
}
