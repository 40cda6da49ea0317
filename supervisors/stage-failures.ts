import type { Envelope } from '../actors/envelope.js';
import { toErrorInfo } from '../src/errors.js';
import { calculateDelay } from '../policies/backoff.js';
import { chargesProbe, CLOSED, onFreshFailure, onProbeFailure, onSuccess, probeAgainNow } from '../policies/breaker.js';
import { recordRestart } from '../policies/intensity.js';
import { StageBase } from './stage-base.js';
import { NONE, NO_WINDOW } from './stage-host.js';
import type { TaskRun } from './task-run.js';

/**
 * What a stage does when a run fails: charge the task or the agent, feed the breaker, retry with
 * backoff or dead-letter, count toward restart intensity (the table in docs/architecture.md). The
 * decisions are the pure functions of breaker.ts, backoff.ts and intensity.ts.
 */
export abstract class StageFailures extends StageBase {
  // ---- failure ------------------------------------------------------------------------------

  /** The first success after trouble: close the breaker, forget the streak and the restart window. */
  protected recovered(): void {
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
  protected failed(run: TaskRun, thrown: unknown, code = 'ERR_TASK_FAILED'): void {
    this.troubled = true;
    const env = run.env;
    const now = this.host.clock.now();
    const error = toErrorInfo(thrown);
    this.failures++;
    let charge: boolean;
    let againstAgent = false;
    if (run.probe) {
      // A probe that failed before is evidence against itself: charge it and probe again at once.
      if (env.attempts > 0 || chargesProbe(this.policy.breaker, this.breaker, now)) {
        charge = true;
        this.breaker = probeAgainNow(this.breaker, now);
      } else {
        charge = false;
        this.breaker = onProbeFailure(this.policy.breaker, this.breaker, now, this.host.random);
        this.breakerOpened(now);
      }
    } else if (this.breaker.status !== 'closed') {
      charge = false; // failed while the breaker was open: charged to the agent, not the task
    } else if (env.attempts === 0) {
      againstAgent = true;
      this.breaker = onFreshFailure(this.policy.breaker, this.breaker, now, this.host.random);
      charge = this.breaker.status === 'closed';
      if (charge) (this.streak === NONE ? (this.streak = [env]) : this.streak.push(env));
      else {
        this.refundStreak();
        this.breakerOpened(now);
      }
    } else {
      charge = true; // failed again on a retry: evidence against the task, not fed to the breaker
    }
    (env.errors ??= []).push({ stage: this.name, attempt: env.attempts + 1, at: now, charged: charge, error });
    this.host.events.emit({ type: 'crashed', path: this.path, at: now, error, taskId: this.taskId(env), charged: charge });

    if (charge) this.charge(env, now, code);
    else if (run.probe) this.ready.push(env); // behind the others: the next probe takes the inbox first (see take)
    else this.ready.unshift(env);
    if (this.durable !== undefined && !(charge && env.attempts >= this.policy.maxAttempts)) {
      this.durable.push({ op: 'fail', id: this.taskId(env), attempts: env.attempts, errors: this.durable.encodeErrors(env.errors) });
    }

    if (againstAgent) {
      const decision = recordRestart(this.policy.intensity, this.window, now);
      this.window = decision.window;
      if (!decision.restart) return this.escalate(thrown);
    }
    this.restartWorker();
  }

  protected charge(env: Envelope, now: number, code: string): void {
    env.attempts++;
    if (env.attempts >= this.policy.maxAttempts) {
      this.deadLettered++;
      this.keys?.release(env, this.ready);
      this.host.deadLetter(env, this.self, code, env.errors![env.errors!.length - 1]!.error, env.attempts);
      return;
    }
    this.retried++;
    const delayMs = calculateDelay(this.policy.retryBackoff, env.attempts, this.host.random);
    this.host.events.emit({ type: 'retried', path: this.path, at: now, taskId: this.taskId(env), attempt: env.attempts + 1, delayMs });
    if (delayMs <= 0) {
      this.ready.push(env);
      return;
    }
    env.dueAt = now + delayMs;
    if (this.delayed === NONE) this.delayed = [];
    let i = this.delayed.length;
    while (i > 0 && this.delayed[i - 1]!.dueAt > env.dueAt) i--;
    this.delayed.splice(i, 0, env);
    if (env.dueAt < this.timerAt) this.armTimer();
  }

  /**
   * The breaker just opened: the fresh failures that led up to it were the outage, not their tasks.
   * Their charge is refunded (with 5 as threshold, 4 tasks get their attempt back), so an outage
   * costs no task an attempt, and one that outlives a process crash cannot add up to a dead letter.
   */
  protected refundStreak(): void {
    for (const env of this.streak) {
      if (env.attempts === 0 || env.attempts >= this.policy.maxAttempts) continue;
      env.attempts--;
      const errors = env.errors!;
      for (let i = errors.length - 1; i >= 0; i--) {
        if (errors[i]!.stage === this.name && errors[i]!.charged) {
          errors[i] = { ...errors[i]!, charged: false };
          break;
        }
      }
      this.durable?.push({ op: 'fail', id: this.taskId(env), attempts: env.attempts, errors: this.durable.encodeErrors(env.errors) });
    }
    this.streak = NONE;
  }

  protected breakerOpened(now: number): void {
    if (this.breaker.status !== 'open') return;
    this.host.events.emit({ type: 'breaker-opened', path: this.path, at: now, probeInMs: this.breaker.probeAt - now, probes: this.breaker.probes });
    if (this.breaker.probeAt < this.timerAt) this.armTimer();
  }

  protected closeBreaker(): void {
    const was = this.breaker;
    this.breaker = onSuccess(was);
    if (was.status !== 'closed') {
      const now = this.host.clock.now();
      this.host.events.emit({ type: 'breaker-closed', path: this.path, at: now, heldMs: now - was.openedAt });
    }
  }

}
