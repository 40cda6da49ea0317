import type { Envelope } from '../actors/envelope.js';
import type { ErrorInfo } from '../src/errors.js';
import type { AgentPolicy } from '../policies/agent-policy.js';
import type { StageFailures } from './stage-failures.js';
import type { StageCounts, StageHost } from './stage-host.js';
import type { StageQueues } from './stage-queues.js';
import type { StageRuns } from './stage-runs.js';
import type { StageStore } from './stage-store.js';
import type { TaskRun } from './task-run.js';

/** What the journaled run loop asks of its stage. */
export interface BacklogOwner {
  readonly path: string;
  /** The stage is running (not starting, suspended or terminated). */
  readonly running: boolean;
  /** The stage is suspended or terminated. */
  readonly halted: boolean;
  /** Outputs wait in the outbox: nothing new may start. */
  readonly blocked: boolean;
  startRun(env: Envelope, probe: boolean): TaskRun | undefined;
  /** Schedules the stage (a page or a batch's start record arrived from an asynchronous journal). */
  wake(): void;
  /** Runs the rate limit or a hold lets start now (Infinity without either); arms the stage's timer when 0. */
  allowance(): number;
  /** Takes the tokens of `n` runs that start now. */
  throttleStarted(n: number): void;
}

/** A batch whose start record is on its way to an asynchronous journal. */
interface Recording {
  readonly batch: Envelope[];
  /** Per task of the batch: it came from the inbox, whose slot it holds until it starts or goes back. */
  readonly fromInbox: boolean[];
  readonly probe: boolean;
  readonly isolated: boolean;
}

/**
 * A journaled stage's run loop and its backlog on disk. Owns nothing but the rules: every batch's
 * start is recorded (one commit) before any handler of it runs; the backlog a restart left in the
 * journal is paged in while the inbox is at most half full (memory holds the inbox bound, not the
 * backlog); recovered tasks are adopted, and a task that was running when the process died runs
 * alone (a suspect) so that a task that kills the process every time is found and dead-lettered.
 * In-memory stages never reach this code. Owns: the batch whose start record an asynchronous
 * journal has not confirmed yet.
 */
export class StageBacklog {
  /** The batch waiting for its start record (asynchronous journals only): nothing else starts meanwhile. */
  private recording: Recording | undefined = undefined;
  /**
   * Page the backlog in accepted order and run it before anything that arrived after the restart:
   * a stage that orders by key, and every stage before one (see keepAcceptedOrder).
   */
  private acceptedOrder: boolean;

  constructor(
    private readonly name: string,
    private readonly policy: AgentPolicy,
    private readonly host: StageHost,
    private readonly queues: StageQueues,
    private readonly runs: StageRuns,
    private readonly failures: StageFailures,
    private readonly store: StageStore,
    private readonly counts: StageCounts,
    private readonly owner: BacklogOwner,
  ) {
    this.acceptedOrder = queues.keys !== undefined;
  }

  /**
   * A later stage of the pipeline orders by key: this one must hand its recovered backlog on in
   * accepted order too. Paged fresh-first, or behind what was sent after the restart, a backlog task
   * of key k reached the ordered stage after a newer task of k, and per-key order broke there.
   */
  keepAcceptedOrder(): void {
    this.acceptedOrder = true;
  }

  /**
   * The journaled run loop: take a batch, record that its runs start (one commit, together with
   * everything else written this turn), then run it. A task that kills the process mid-run is
   * therefore charged on recovery, and after maxAttempts crashes it is dead-lettered instead of
   * crash-looping. Tasks of the batch that cannot start now (an async handler filled the slots,
   * the breaker opened) go back to the front, in order.
   */
  run(budget: number): number {
    const { queues, runs, failures } = this;
    if (runs.isolated !== undefined || this.recording !== undefined) return 0;
    this.refill();
    const concurrency = this.policy.concurrency;
    const batch: Envelope[] = [];
    // A task taken out of the inbox for a batch keeps its slot until it starts: without this, senders
    // refilled the inbox behind a batch whose tasks could not all start (an async handler took the
    // only slot), and a stage with capacity 4 held 7 tasks (2 x capacity - 1; up to 256 + capacity).
    const fromInbox: boolean[] = [];
    const took = (env: Envelope): void => {
      batch.push(env);
      fromInbox.push(queues.tookFromInbox);
      if (queues.tookFromInbox) queues.inbox.hold();
    };
    let probe = false;
    const allowed = this.owner.allowance();
    if (allowed === 0) return 0;
    if (failures.breaker.status !== 'closed') {
      if (!failures.probeDue(this.host.clock.now()) || runs.inFlight >= concurrency) return 0;
      // An ordered backlog probes in accepted order (a stage that orders by key first with a task that has
      // not failed here: StageQueues.takeProbe); otherwise at random.
      const env = this.acceptedOrder ? (this.queues.takeUntried(failures) ?? this.take(true)) : this.queues.takeProbe(this.host.random, failures);
      if (env === undefined) return 0;
      failures.startProbe();
      took(env);
      probe = true;
    } else {
      // Sync handlers: one start record and one commit per 256 runs (4x the scheduler's batch: commits dominate here).
      const max = Math.min(allowed, runs.sawAsync ? concurrency - runs.inFlight : Math.max(budget, 256));
      // Fresh tasks first while fresh failures add up towards the breaker (see AgentSupervisor.run).
      const preferFresh = failures.preferFresh;
      while (batch.length < max) {
        const env = this.take(preferFresh);
        if (env === undefined) break;
        if (env.suspect && (batch.length > 0 || runs.inFlight > 0)) {
          queues.putBack(env, queues.tookFromInbox); // a suspect runs alone, once nothing else runs here
          break;
        }
        took(env);
        if (env.suspect) break;
      }
    }
    if (batch.length === 0) return 0;
    this.owner.throttleStarted(batch.length);
    // A suspect (running when the process died) runs alone: if the process dies again, it is to blame.
    const isolated = batch[0]!.suspect;
    const ids = batch.map((e) => this.host.taskId(e));
    if (!isolated) for (const run of runs.running) ids.push(run.taskId);
    const recording: Recording = { batch, fromInbox, probe, isolated };
    this.recording = recording;
    let inside = true;
    let started = 0;
    this.store.recordStart(ids, isolated, (ok) => {
      if (this.recording !== recording) return; // taken back (the stage suspended) while it was on its way
      this.recording = undefined;
      const n = this.start(recording, ok);
      if (inside) started = n; // a synchronous journal: still inside run()
      else this.owner.wake(); // an asynchronous one: the batch ran when its record was committed
    });
    inside = false;
    return started;
  }

  /** Whether a batch waits for its start record: the stage has no other work until it is committed. */
  get waiting(): boolean {
    return this.recording !== undefined;
  }

  /** Takes a task out of the batch waiting for its start record (a cancel); undefined if none matches. */
  remove(pred: (env: Envelope) => boolean): Envelope | undefined {
    const recording = this.recording;
    if (recording === undefined) return undefined;
    const i = recording.batch.findIndex(pred);
    if (i < 0) return undefined;
    const [env] = recording.batch.splice(i, 1);
    const [fromInbox] = recording.fromInbox.splice(i, 1);
    if (fromInbox) this.queues.inbox.unhold();
    if (recording.batch.length === 0) this.recording = undefined;
    return env;
  }

  /** The stage suspends: a batch waiting for its start record goes back to the front, in order. */
  takeBack(): void {
    const recording = this.recording;
    if (recording === undefined) return;
    this.recording = undefined;
    const { batch, fromInbox } = recording;
    // A probe's breaker state needs no undoing: a suspended stage restarts with its breaker closed.
    for (let i = batch.length - 1; i >= 0; i--) this.queues.putBack(batch[i]!, fromInbox[i]!);
  }

  /** Runs a batch once its start is recorded; returns how many runs started. */
  private start({ batch, fromInbox, probe, isolated }: Recording, ok: boolean): number {
    const { queues, runs, failures } = this;
    if (!ok) {
      // The journal failed (the pipeline is failing): run nothing it did not record.
      if (!this.owner.halted) for (let i = batch.length - 1; i >= 0; i--) queues.putBack(batch[i]!, fromInbox[i]!);
      return 0;
    }
    const concurrency = this.policy.concurrency;
    batch[0]!.suspect = false;
    let n = 0;
    for (; n < batch.length; n++) {
      if (!this.owner.running || runs.inFlight >= concurrency || this.owner.blocked) break;
      if (!probe && failures.breaker.status !== 'closed') break;
      if (fromInbox[n]) queues.inbox.unhold(); // it starts: it no longer waits here
      const run = this.owner.startRun(batch[n]!, probe);
      if (isolated && run !== undefined && !run.done) runs.isolated = run;
    }
    for (let i = batch.length - 1; i >= n; i--) queues.putBack(batch[i]!, fromInbox[i]!);
    if (isolated && runs.isolated === undefined) {
      if (n === 0) batch[0]!.suspect = true; // it did not run: it still runs alone, later
      this.store.endIsolation(); // a sync run ended already (or none started)
    }
    return n;
  }

  /** The next task; an ordered stage runs its backlog (older than anything arriving now) first. */
  take(preferFresh: boolean): Envelope | undefined {
    return this.queues.take(preferFresh, this.acceptedOrder && this.store.hasBacklog());
  }

  /** Pages the stage's backlog in from the journal while its inbox is at most half full. */
  private refill(): void {
    if (!this.store.canPage()) return; // no backlog, or a page is on its way
    const { inbox, ready } = this.queues;
    const ordered = this.acceptedOrder;
    // Ordered stages hold fresh arrivals in the inbox until the backlog is in (see take), so only
    // `ready` counts against the page: at most twice the inbox bound in memory, and never stuck.
    const room = inbox.capacity - (ordered ? 0 : inbox.length) - ready.length;
    if (room < inbox.capacity / 2) return;
    let arrived = false;
    let reserved = 0;
    this.store.page(room, ordered, (tasks) => {
      if (reserved > 0) inbox.unhold(reserved);
      for (const { env, running } of tasks) this.adopt(env, running);
      if (!arrived) arrived = true; // at once: still inside run()
      else this.owner.wake(); // later: the page arrived after run() returned
    });
    // An asynchronous journal answers later: the room the page was sized for is held for it until
    // then, or upstream stages would fill the inbox meanwhile and the page would overflow its bound.
    if (!arrived) {
      arrived = true;
      reserved = ordered ? 0 : room;
      if (reserved > 0) inbox.hold(reserved);
    }
  }

  /** A recovered row that cannot be decoded: dead-lettered (ERR_JOURNAL_CORRUPT), so the rest recover. */
  private quarantine(env: Envelope, error: ErrorInfo): void {
    this.counts.received++;
    this.counts.deadLettered++;
    (env.errors ??= []).push({ stage: this.name, attempt: env.attempts + 1, at: this.host.clock.now(), charged: false, error });
    this.host.deadLetter(env, this.name, 'ERR_JOURNAL_CORRUPT', error, env.attempts);
  }

  /**
   * Takes in a task recovered from the journal. A run in progress when the process died makes its
   * task a suspect, not a culprit: a batch of 256 sync runs, or the neighbours of an async run, were
   * in progress too. A suspect runs alone; if the process dies during that isolated run, the task
   * is charged (ERR_PROCESS_DIED), so a task that kills the process every time is dead-lettered
   * after maxAttempts isolated crashes instead of crash-looping.
   */
  adopt(env: Envelope, running: 'no' | 'suspect' | 'isolated'): void {
    const corrupt = (env as Envelope & { corrupt?: ErrorInfo }).corrupt;
    if (corrupt !== undefined) return this.quarantine(env, corrupt);
    this.counts.received++;
    const { queues } = this;
    const now = this.host.clock.now();
    // Pages come in accepted order, so claiming keys here keeps per-key order across the restart,
    // also for a task that goes straight to a retry below; a parked task comes back through `ready`.
    if (queues.keys !== undefined && !queues.keys.claim(env)) {
      if (running !== 'no') env.suspect = true;
      return;
    }
    if (running === 'suspect') {
      env.suspect = true;
      queues.ready.push(env);
      return;
    }
    if (running === 'isolated') {
      env.suspect = true; // it may well kill the process again: keep running it alone
      const taskId = this.host.taskId(env);
      const error = { name: 'BatonError', code: 'ERR_PROCESS_DIED', message: `the process ended while task ${taskId} was running at stage '${this.owner.path}'` };
      (env.errors ??= []).push({ stage: this.name, attempt: env.attempts + 1, at: now, charged: true, error });
      this.failures.charge(env, now, 'ERR_PROCESS_DIED');
      if (env.attempts < this.policy.maxAttempts) this.store.recordFailure(taskId, env);
      return;
    }
    // A task that failed here before goes behind the fresh ones of its page: if the agent is still
    // down, the fresh tasks open the breaker before this retry can be charged again for the outage.
    // At an ordered stage the backlog runs first, in accepted order (see take).
    if (this.acceptedOrder) queues.ready.push(env);
    else queues.inbox.push(env);
  }
}
