import type { DurableLog } from './durable-log.js';
import type { Envelope } from '../actors/envelope.js';
import { startProbe } from '../policies/breaker.js';
import { StageFailures } from './stage-failures.js';
import type { TaskRun } from './task-run.js';

/**
 * A stage over a journal: its run loop records each batch's start before any handler runs, pages its
 * backlog in after a restart, and adopts recovered tasks (suspects run alone). In-memory stages never
 * reach this code; AgentSupervisor.run chooses.
 */
export abstract class DurableStage extends StageFailures {
  protected abstract take(preferFresh: boolean): Envelope | undefined;
  protected abstract startRun(env: Envelope, probe: boolean): TaskRun | undefined;

  /**
   * The durable run loop: take a batch, record that its runs start (one commit, together with
   * everything else written this turn), then run it. A task that kills the process mid-run is
   * therefore charged on recovery, and after maxAttempts crashes it is dead-lettered instead of
   * crash-looping. Tasks of the batch that cannot start now (an async handler filled the slots,
   * the breaker opened) go back to the front, in order.
   */
  protected runDurable(budget: number): number {
    const durable = this.durable!;
    if (this.isolatedRun !== undefined) return 0;
    this.refill(durable);
    const concurrency = this.policy.concurrency;
    const batch: Envelope[] = [];
    let probe = false;
    if (this.breaker.status !== 'closed') {
      if (this.breaker.status !== 'open' || this.host.clock.now() < this.breaker.probeAt || this.inFlight >= concurrency) return 0;
      const env = this.take(true);
      if (env === undefined) return 0;
      this.breaker = startProbe(this.breaker);
      batch.push(env);
      probe = true;
    } else {
      // Sync handlers: one start record and one commit per 256 runs (4x the scheduler's batch: commits dominate here).
      const max = this.sawAsync ? concurrency - this.inFlight : Math.max(budget, 256);
      // Fresh tasks first while fresh failures add up towards the breaker (see AgentSupervisor.run).
      const preferFresh = this.troubled && this.breaker.status === 'closed' && this.breaker.freshFailures > 0;
      while (batch.length < max) {
        const env = this.take(preferFresh);
        if (env === undefined) break;
        if (env.suspect && (batch.length > 0 || this.inFlight > 0)) {
          this.ready.unshift(env); // a suspect runs alone, once nothing else runs here
          break;
        }
        batch.push(env);
        if (env.suspect) break;
      }
    }
    if (batch.length === 0) return 0;
    // A suspect (running when the process died) runs alone: if the process dies again, it is to blame.
    const isolated = batch[0]!.suspect;
    const ids = batch.map((e) => this.taskId(e));
    if (!isolated) for (const run of this.running) ids.push(run.taskId);
    durable.push({ op: 'start', stage: this.name, ids, isolated });
    if (!durable.flush()) {
      // The journal failed (the pipeline is failing): run nothing it did not record.
      if (!this.halted()) for (let i = batch.length - 1; i >= 0; i--) this.ready.unshift(batch[i]!);
      return 0;
    }
    batch[0]!.suspect = false;
    let n = 0;
    for (; n < batch.length; n++) {
      if (this.status !== 'running' || this.inFlight >= concurrency || this.outCount > 0) break;
      if (!probe && this.breaker.status !== 'closed') break;
      const run = this.startRun(batch[n]!, probe);
      if (isolated && run !== undefined && !run.done) this.isolatedRun = run;
    }
    for (let i = batch.length - 1; i >= n; i--) this.ready.unshift(batch[i]!);
    if (isolated && this.isolatedRun === undefined) {
      if (n === 0) batch[0]!.suspect = true; // it did not run: it still runs alone, later
      this.endIsolation(); // a sync run ended already (or none started)
    }
    return n;
  }

  /** Pages the stage's backlog in from the journal while its inbox is at most half full. */
  protected refill(durable: DurableLog): void {
    if (!durable.hasBacklog(this.name)) return;
    // Ordered stages hold fresh arrivals in the inbox until the backlog is in (see take), so only
    // `ready` counts against the page: at most twice the inbox bound in memory, and never stuck.
    const room = this.inbox.capacity - (this.keys === undefined ? this.inbox.length : 0) - this.ready.length;
    if (room < this.inbox.capacity / 2) return;
    for (const { env, running } of durable.page(this.name, room, this.keys !== undefined)) this.adopt(env, running);
  }

  /**
   * Takes in a task recovered from the journal. A run in progress when the process died makes its
   * task a suspect, not a culprit: a batch of 256 sync runs, or the neighbours of an async run, were
   * in progress too. A suspect runs alone; if the process dies during that isolated run, the task
   * is charged (ERR_PROCESS_DIED), so a task that kills the process every time is dead-lettered
   * after maxAttempts isolated crashes instead of crash-looping.
   */
  adopt(env: Envelope, running: 'no' | 'suspect' | 'isolated'): void {
    this.received++;
    const now = this.host.clock.now();
    // Pages come in accepted order, so claiming keys here keeps per-key order across the restart,
    // also for a task that goes straight to a retry below; a parked task comes back through `ready`.
    if (this.keys !== undefined && !this.keys.claim(env)) {
      if (running !== 'no') env.suspect = true;
      return;
    }
    if (running === 'suspect') {
      env.suspect = true;
      this.ready.push(env);
      return;
    }
    if (running === 'isolated') {
      env.suspect = true; // it may well kill the process again: keep running it alone
      const error = { name: 'BatonError', code: 'ERR_PROCESS_DIED', message: `the process ended while task ${this.taskId(env)} was running at stage '${this.path}'` };
      (env.errors ??= []).push({ stage: this.name, attempt: env.attempts + 1, at: now, charged: true, error });
      this.charge(env, now, 'ERR_PROCESS_DIED');
      if (env.attempts < this.policy.maxAttempts) this.durable!.push({ op: 'fail', id: this.taskId(env), attempts: env.attempts, errors: this.durable!.encodeErrors(env.errors) });
      return;
    }
    // A task that failed here before goes behind the fresh ones of its page: if the agent is still
    // down, the fresh tasks open the breaker before this retry can be charged again for the outage.
    // At an ordered stage the backlog runs first, in accepted order (see take).
    if (this.keys !== undefined) this.ready.push(env);
    else this.inbox.push(env);
  }

}
