import type { Envelope } from '../actors/envelope.js';
import { toErrorInfo } from '../src/errors.js';
import type { AgentPolicy } from '../policies/agent-policy.js';
import { calculateDelay } from '../policies/backoff.js';
import { chargesProbe, CLOSED, onFreshFailure, onProbeFailure, onSuccess, probeAgainNow, startProbe, type BreakerState } from '../policies/breaker.js';
import { recordRestart, type RestartWindow } from '../policies/intensity.js';
import { classifyWith } from '../policies/error-class.js';
import type { StageCounts, StageHost } from './stage-host.js';
import { NONE, type StageQueues } from './stage-queues.js';
import type { StageStore } from './stage-store.js';

const NO_WINDOW: RestartWindow = Object.freeze([]);

/** What the stage must do after a failure: restart its worker, escalate, or nothing (a rate-limit refusal: the worker is fine). */
export type FailureAction = 'restart' | 'escalate' | 'none';

/**
 * A stage's failure rules: whether a failure is charged to the task or to the agent, the breaker,
 * retries with backoff, dead letters, and restart intensity (the table in docs/architecture.md).
 * Owns: the breaker's state, the `troubled` flag, the streak of fresh failures since the last success
 * (refunded if the breaker opens: they were the outage, not their tasks) and the restart window.
 * The decisions are the pure functions of policies/breaker.ts, backoff.ts and intensity.ts; this part
 * keeps their state and acts on them through the queues, the store and the host.
 */
export class StageFailures {
  breaker: BreakerState = CLOSED;
  /** Set by any failure; a success then clears the breaker, streak and restart window (one flag on the hot path). */
  troubled = false;
  /** Fresh tasks charged since the last success: if the breaker opens, they were outage victims. */
  private streak: Envelope[] = NONE;
  private window: RestartWindow = NO_WINDOW;

  constructor(
    private readonly path: string,
    private readonly name: string,
    private readonly policy: AgentPolicy,
    private readonly host: StageHost,
    private readonly queues: StageQueues,
    private readonly store: StageStore,
    private readonly counts: StageCounts,
    /**
     * Its stage: told when a retry or probe due at an instant may be the earliest thing its timer waits
     * for, and when a server refused a run for rate (the stage's throttle holds the inbox).
     */
    private readonly stage: { armTimerIfEarlier(at: number): void; refused(retryAfterMs: number | undefined, now: number): void },
  ) {}

  /** While fresh failures add up towards the breaker, fresh tasks run first (see AgentSupervisor.run). */
  get preferFresh(): boolean {
    return this.troubled && this.breaker.status === 'closed' && this.breaker.freshFailures > 0;
  }

  /** The breaker is open and its probe is due: one task may run. */
  probeDue(now: number): boolean {
    return this.breaker.status === 'open' && now >= this.breaker.probeAt;
  }

  /**
   * Whether `env` has its free probe still due: it has not failed as a probe in the breaker's current
   * hold, nor been excused in an earlier one (see fresh).
   */
  unprobed(env: Envelope): boolean {
    return !this.excusedBefore(env) && (this.breaker.status === 'closed' || env.probedIn !== this.breaker.openedAt);
  }

  /** Whether `env` has not failed here: never charged, never excused (a probe with it tests the agent, not the task). */
  untried(env: Envelope): boolean {
    return env.attempts === 0 && env.excusedIn === -1;
  }

  /**
   * Whether a failure of `env` was put on the agent in an earlier breaker hold, one that a success has
   * ended since. The success showed the agent works, so that failure was most likely the task's: it is
   * no longer fresh, and its next failure is charged to it and not fed to the breaker. Without this a
   * poison task's failures were excused hold after hold: 500 tasks, 350 of them poison, kept the
   * breaker reopening for 5-15 h of simulated time (healthy tasks waiting up to 4.7 h); with it each
   * poison task counts towards the breaker once. An outage costs no attempt still: a task it excused
   * succeeds once it is over; only an outage that comes back charges it, once per return.
   */
  private excusedBefore(env: Envelope): boolean {
    return env.excusedIn !== -1 && (this.breaker.status === 'closed' || env.excusedIn !== this.breaker.openedAt);
  }

  /** Marks `env` as excused in the breaker's current hold (see excusedBefore). */
  private excuse(env: Envelope): void {
    if (this.breaker.status !== 'closed') env.excusedIn = this.breaker.openedAt;
  }

  startProbe(): void {
    this.breaker = startProbe(this.breaker);
  }

  /** The instant of the next probe, if one waits in the future; else Infinity. */
  probeAt(now: number): number {
    // A probe already due needs no timer: the run loop takes it (hasWork) as soon as a task waits.
    // Arming one for a past instant would fire at once, find nothing to probe, and re-arm forever.
    return this.breaker.status === 'open' && this.breaker.probeAt > now ? this.breaker.probeAt : Infinity;
  }

  /** A run succeeded. While the breaker is open only its probe speaks for the agent. */
  succeeded(probe: boolean): void {
    if (this.troubled && (probe || this.breaker.status === 'closed')) this.recovered();
  }

  /** The first success after trouble: close the breaker, forget the streak and the restart window. */
  private recovered(): void {
    this.troubled = false;
    if (this.breaker !== CLOSED) this.closeBreaker();
    if (this.streak.length > 0) this.streak = NONE;
    if (this.window.length > 0) this.window = NO_WINDOW;
  }

  /**
   * A run failed. `code` is the dead-letter code if this failure is the task's last: ERR_TASK_FAILED
   * for anything the handler threw (even a BatonError from elsewhere, whose own code stays in the
   * attempt's error), Baton's own code for failures Baton decided (ERR_TIMEOUT, ERR_INVALID_INPUT).
   */
  failed(env: Envelope, probe: boolean, thrown: unknown, code = 'ERR_TASK_FAILED'): FailureAction {
    this.troubled = true;
    const now = this.host.clock.now();
    const error = toErrorInfo(thrown);
    this.counts.failed++;
    // What the failure says (policies/error-class.ts; the agent's classify first): a rate-limit refusal
    // holds the inbox and charges nobody; a terminal error dead-letters its task now; an outage opens
    // the breaker at once; anything else is transient and goes by the rules below.
    const cls = classifyWith(this.policy.classify, thrown, now);
    if (cls.kind === 'rate-limited') return this.refused(env, probe, error, cls.retryAfterMs, now);
    const breakerOn = this.policy.breaker.threshold !== Infinity;
    const fresh = env.attempts === 0 && !this.excusedBefore(env);
    let charge: boolean;
    let againstAgent = false;
    if (cls.kind === 'terminal') {
      // Bad input: retrying cannot help, and it says nothing about the agent or what it depends on.
      charge = true;
      if (probe) this.breaker = probeAgainNow(this.breaker, now);
    } else if (probe) {
      if (!fresh) {
        // A probe that failed here before is evidence against itself: charge it and probe again at once.
        charge = true;
        this.breaker = probeAgainNow(this.breaker, now);
      } else {
        // A fresh probe is the agent's failure, until the hold is past maxHoldMs and this task already
        // had its free probe in this hold (see BreakerPolicy.maxHoldMs): then it is charged, and the
        // breaker still waits its backoff, so a long outage charges one held task per probe at most.
        const openedAt = this.breaker.status === 'closed' ? -1 : this.breaker.openedAt;
        charge = chargesProbe(this.policy.breaker, this.breaker, now, env.probedIn === openedAt);
        env.probedIn = openedAt;
        if (!charge) this.excuse(env);
        this.breaker = onProbeFailure(this.policy.breaker, this.breaker, now, this.host.random);
        this.breakerOpened(now);
      }
    } else if (this.breaker.status !== 'closed') {
      charge = false; // failed while the breaker was open: charged to the agent, not the task
      if (fresh) this.excuse(env);
    } else if (cls.kind === 'outage' && breakerOn) {
      // The dependency says it is down: open at once (a breaker of threshold 1 for this failure).
      againstAgent = true;
      charge = false;
      this.breaker = onFreshFailure({ ...this.policy.breaker, threshold: 1 }, this.breaker, now, this.host.random);
      this.refundStreak();
      this.excuse(env);
      this.breakerOpened(now);
    } else if (fresh) {
      againstAgent = true;
      this.breaker = onFreshFailure(this.policy.breaker, this.breaker, now, this.host.random);
      charge = this.breaker.status === 'closed';
      if (charge) (this.streak === NONE ? (this.streak = [env]) : this.streak.push(env));
      else {
        this.refundStreak();
        this.excuse(env);
        this.breakerOpened(now);
      }
    } else {
      charge = true; // failed again on a retry: evidence against the task, not fed to the breaker
    }
    const taskId = this.host.taskId(env);
    (env.errors ??= []).push({ stage: this.name, attempt: env.attempts + 1, at: now, charged: charge, error });
    this.host.events.emit({ type: 'crashed', path: this.path, at: now, error, taskId, charged: charge });

    const terminal = cls.kind === 'terminal';
    if (charge) this.charge(env, now, code, terminal);
    else if (probe) this.queues.ready.push(env); // behind the others: the next probe takes the inbox first
    else this.queues.ready.unshift(env);
    if (!(charge && (terminal || env.attempts >= this.policy.maxAttempts))) this.store.recordFailure(taskId, env);

    // Restart intensity is for a worker that cannot run (init failing; failures the task is not
    // charged for), not for failures its tasks pay for: with the breaker off, a 70% poison batch in
    // runs of 14 escalated the stage and its pipeline stopped, dead-lettering the healthy tasks too.
    if (againstAgent && !charge && this.exceedsIntensity(now)) return 'escalate';
    return 'restart';
  }

  /**
   * A server refused the run for rate: the task goes back to the front, uncharged (its history keeps
   * the refusal), and the stage's throttle holds the inbox for `retryAfterMs` (or its own backoff).
   * A probe of the breaker that meets a refusal hands the probe on at once: the throttle decides when.
   */
  private refused(env: Envelope, probe: boolean, error: ReturnType<typeof toErrorInfo>, retryAfterMs: number | undefined, now: number): FailureAction {
    const taskId = this.host.taskId(env);
    (env.errors ??= []).push({ stage: this.name, attempt: env.attempts + 1, at: now, charged: false, error });
    this.host.events.emit({ type: 'crashed', path: this.path, at: now, error, taskId, charged: false });
    if (probe) this.breaker = probeAgainNow(this.breaker, now);
    this.queues.ready.unshift(env);
    this.store.recordFailure(taskId, env);
    this.stage.refused(retryAfterMs, now);
    return 'none';
  }

  /**
   * `init` threw: an agent that cannot start is the case restart intensity is for. True if it must
   * escalate; otherwise the worker retries `init` after the restart backoff.
   */
  initFailed(thrown: unknown): boolean {
    this.troubled = true;
    const now = this.host.clock.now();
    this.host.events.emit({ type: 'crashed', path: this.path, at: now, error: toErrorInfo(thrown) });
    return this.exceedsIntensity(now);
  }

  /** One more restart counted against the agent: true if that is more than the intensity allows. */
  private exceedsIntensity(now: number): boolean {
    const decision = recordRestart(this.policy.intensity, this.window, now);
    this.window = decision.window;
    return !decision.restart;
  }

  /** Charges `env` one attempt: a retry after the backoff, or a dead letter at maxAttempts (or now, for a terminal error). */
  charge(env: Envelope, now: number, code: string, terminal = false): void {
    env.attempts++;
    if (terminal || env.attempts >= this.policy.maxAttempts) {
      this.counts.deadLettered++;
      this.queues.release(env);
      this.host.deadLetter(env, this.name, code, env.errors![env.errors!.length - 1]!.error, env.attempts);
      return;
    }
    this.counts.retried++;
    const delayMs = calculateDelay(this.policy.retryBackoff, env.attempts, this.host.random);
    this.host.events.emit({ type: 'retried', path: this.path, at: now, taskId: this.host.taskId(env), attempt: env.attempts + 1, delayMs });
    if (delayMs <= 0) this.queues.ready.push(env);
    else {
      this.queues.delay(env, now + delayMs);
      this.stage.armTimerIfEarlier(env.dueAt);
    }
  }

  /** A restart from above (the pipeline's supervisor): a fresh start, as a new agent. */
  reset(): void {
    this.window = NO_WINDOW;
    if (this.breaker.status !== 'closed') this.store.recordBreaker(null);
    this.breaker = CLOSED;
  }

  /**
   * The breaker just opened: the fresh failures that led up to it were the outage, not their tasks.
   * Their charge is refunded (with 5 as threshold, 4 tasks get their attempt back), so an outage
   * costs no task an attempt, and one that outlives a process crash cannot add up to a dead letter.
   */
  private refundStreak(): void {
    for (const env of this.streak) {
      if (env.attempts === 0 || env.attempts >= this.policy.maxAttempts) continue;
      env.attempts--;
      this.excuse(env);
      const errors = env.errors!;
      for (let i = errors.length - 1; i >= 0; i--) {
        if (errors[i]!.stage === this.name && errors[i]!.charged) {
          errors[i] = { ...errors[i]!, charged: false };
          break;
        }
      }
      this.store.recordFailure(this.host.taskId(env), env);
    }
    this.streak = NONE;
  }

  private breakerOpened(now: number): void {
    if (this.breaker.status !== 'open') return;
    this.host.events.emit({ type: 'breaker-opened', path: this.path, at: now, probeInMs: this.breaker.probeAt - now, probes: this.breaker.probes });
    this.stage.armTimerIfEarlier(this.breaker.probeAt);
    if (this.store.journaled) {
      // In the journal's wall clock: the system clock may be simulated, and the next process's differs.
      const toWall = this.store.wallNow() - now;
      const b = this.breaker;
      this.store.recordBreaker({ openedAt: Math.max(0, b.openedAt + toWall), probeAt: Math.max(0, b.probeAt + toWall), probes: b.probes });
    }
  }

  private closeBreaker(): void {
    const was = this.breaker;
    this.breaker = onSuccess(was);
    if (was.status !== 'closed') {
      const now = this.host.clock.now();
      this.host.events.emit({ type: 'breaker-closed', path: this.path, at: now, heldMs: now - was.openedAt });
      this.store.recordBreaker(null);
    }
  }

  /**
   * At start, with a journal: a breaker the previous process left open (it died during an outage)
   * opens again here, its next probe at the time that was due (or now, if that has passed), so the
   * stage does not restart into the outage at full speed. Without a journal, or with none left, nothing.
   */
  restoreHold(): void {
    const hold = this.store.journaled ? this.store.storedBreaker() : undefined;
    if (hold === undefined || this.breaker.status !== 'closed') return;
    const now = this.host.clock.now();
    const fromWall = now - this.store.wallNow();
    this.breaker = { status: 'open', probes: hold.probes, openedAt: hold.openedAt + fromWall, probeAt: Math.max(now, hold.probeAt + fromWall) };
    this.troubled = true;
    this.host.events.emit({ type: 'breaker-opened', path: this.path, at: now, probeInMs: this.breaker.probeAt - now, probes: this.breaker.probes });
    this.stage.armTimerIfEarlier(this.breaker.probeAt);
  }
}
