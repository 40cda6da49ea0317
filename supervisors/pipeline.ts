import type { Clock } from '../src/clock.js';
import { BatonError } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Logger } from '../src/logging.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { oneForOne } from '../policies/strategy.js';
import { Supervisor } from './supervisor.js';
import { DurableLog } from './durable-log.js';
import { OutcomeFeed, type Outcome, type OutcomesOptions } from '../actors/outcomes.js';
import type { PipelineDeps, PipelineOptions, PipelineStats } from './pipeline-types.js';
import { needJournal, readDeadLetters, readOutcome, replayDeadLetters } from './operator-api.js';
import { PipelineIntake } from './pipeline-intake.js';
import { recoverPending } from './pipeline-recovery.js';
import { buildStages, checkPipelineOptions } from './pipeline-stages.js';

export type { PipelineDeps, PipelineOptions, PipelineStats, SendOptions, SendResult } from './pipeline-types.js';

/**
 * A named subtree of agent supervisors wired by address. Its own supervisor (one-for-one) only
 * restarts stages that escalate; it never routes messages. It counts tasks in and outcomes out,
 * so `drain` knows when every accepted task has its outcome.
 */
export class Pipeline<I = unknown, O = unknown> extends PipelineIntake<I, O> {
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  readonly durable: DurableLog | undefined;
  protected readonly log: Logger;
  protected readonly feed: OutcomeFeed;
  protected readonly journalClock: () => number;
  private readonly stageList: AgentSupervisor[];
  private readonly supervisor: Supervisor;
  private recovered = 0;

  constructor(options: PipelineOptions, deps: PipelineDeps) {
    super();
    this.name = checkPipelineOptions(options);
    ({ scheduler: this.scheduler, clock: this.clock, random: this.random, events: this.events } = deps);
    this.log = deps.log.child({ pipeline: this.name });
    this.feed = new OutcomeFeed(this.log);
    this.supervisor = new Supervisor(this.name, this.name, oneForOne({ maxRestarts: 3, withinMs: 60_000, ...options.supervisor }), deps);
    this.supervisor.onFailed = (err) => this.failed(err);
    this.journalClock = deps.journal === undefined ? Date.now : () => deps.journal!.now();
    this.durable = deps.journal === undefined ? undefined : new DurableLog(
      deps.journal.openPipeline(this.name),
      this.journalClock,
      options.keepCompletedMs ?? 24 * 3600_000,
      this.log,
      (err) => {
        // Nothing may run that the journal did not record: the stages stop now, and what they hold
        // stays pending in the journal for the next start (as after a crash).
        const failure = this.failed(new BatonError('ERR_PIPELINE_FAILED', `the journal could not record pipeline '${this.name}': ${err.message}`, { pipeline: this.name }, err));
        this.supervisor.terminate('failed', failure);
        return failure;
      },
    );
    this.stageList = buildStages(this.name, options, this, this.log, this.byName);
    this.stageList.forEach((s, i) => {
      s.handoff.next = this.stageList[i + 1] ?? null;
      this.supervisor.add(s, 'permanent');
    });
    this.first = this.stageList[0]!;
  }

  /** Recovers what the journal holds for this pipeline, then starts every stage (runs each agent's init). */
  start(): this {
    if (this.durable !== undefined) this.recover(this.durable);
    for (const s of this.stageList) s.start();
    return this;
  }

  /** See recoverPending (pipeline-recovery.ts). */
  private recover(durable: DurableLog): void {
    this.seq = durable.journal.lastSeq();
    this.recovered += recoverPending(durable, {
      name: this.name,
      log: this.log,
      hasStage: (name) => this.byName.has(name),
      countPending: (count) => void (this.pending += count),
      stageGone: (env, name, attempts, message) => this.deadLetter(env, name, 'ERR_UNKNOWN_ADDRESS', { name: 'BatonError', code: 'ERR_UNKNOWN_ADDRESS', message }, attempts),
    });
  }

  // ---- consumers ----------------------------------------------------------------------------

  /** Calls `listener` with every outcome from now on; returns a function that unsubscribes. */
  onOutcome(listener: (outcome: Outcome<O>) => void): () => void {
    return this.feed.on(listener as (o: Outcome) => void);
  }

  /** Outcomes from now on, as an async iterator; ends when the pipeline stops (or, with `untilDrained`, when nothing is pending). */
  outcomes(options: OutcomesOptions = {}): AsyncIterableIterator<Outcome<O>> {
    return this.feed.iterate(() => this.status === 'stopped' || this.status === 'failed' || (options.untilDrained === true && this.pending === 0)) as AsyncIterableIterator<Outcome<O>>;
  }

  stats(): PipelineStats {
    return {
      name: this.name,
      status: this.status,
      accepted: this.accepted,
      pending: this.pending,
      completed: this.completed,
      deadLettered: this.deadLettered,
      stages: this.stageList.map((s) => s.stats()),
    };
  }

  /**
   * Stops accepting, waits up to `drainMs` for pending tasks to finish, then stops every stage.
   * Without a journal, tasks still unfinished become dead letters with ERR_STOPPED (nothing
   * vanishes); with one, they stay pending in it and resume when the pipeline is spawned again.
   */
  stop(options: { readonly drainMs?: number } = {}): Promise<void> {
    // A second call (system.shutdown, say) waits for the stop under way instead of passing it.
    if (this.stopping !== undefined) return this.stopping;
    if (this.status !== 'running') return Promise.resolve();
    return (this.stopping = this.stopNow(options));
  }

  private stopping: Promise<void> | undefined = undefined;

  private async stopNow(options: { readonly drainMs?: number }): Promise<void> {
    this.status = 'stopping';
    this.first.inbox.wakeAll();
    const drainMs = options.drainMs ?? 5_000;
    if (this.pending > 0 && drainMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.drain().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, drainMs)))]);
      clearTimeout(timer);
    }
    if (this.status === 'stopping') {
      this.supervisor.terminate('stopped', new BatonError('ERR_STOPPED', `pipeline '${this.name}' stopped before this task finished.`, { pipeline: this.name }));
      this.status = 'stopped';
    }
    if (this.durable !== undefined) {
      // Unfinished tasks stay pending in the journal; no run is in progress any more.
      this.durable.flush();
      if (this.status === 'stopped') this.durable.journal.releaseRunning();
    }
    // With a journal, tasks left unfinished have no outcome yet (they resume on the next start):
    // a drain() waiting for them would wait forever.
    if (this.pending > 0) this.refuseDrainers(this.stoppedError());
    this.feed.endAll();
  }

  /** Resolves when every accepted task has its outcome; rejects if the pipeline stops or fails first. */
  override drain(): Promise<void> {
    if (this.status === 'stopped' && this.pending > 0) return Promise.reject(this.stoppedError());
    return super.drain();
  }

  private refuseDrainers(error: BatonError): void {
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.reject(error);
  }

  // ---- the journal, for operators -----------------------------------------------------------

  /** Recorded dead letters, oldest first (needs a journal). */
  deadLetters(options: { readonly limit?: number; readonly offset?: number } = {}): Outcome<O>[] {
    return readDeadLetters<O>(needJournal(this.durable, this.name, 'deadLetters'), options);
  }

  /** The recorded outcome of a task, or undefined while it is pending or unknown (needs a journal). */
  outcome(id: string): Outcome<O> | undefined {
    return readOutcome<O>(needJournal(this.durable, this.name, 'outcome'), id);
  }

  /**
   * Sends dead letters back to the stage where they failed, with their attempts reset (after a fix
   * is deployed). Ids that are not dead letters here are skipped. Returns how many were replayed.
   */
  replay(ids: readonly string[]): number {
    needJournal(this.durable, this.name, 'replay');
    if (this.status !== 'running') throw this.stoppedError();
    return replayDeadLetters(this.durable!, ids, (name) => this.byName.get(name), (stage, env) => {
      this.pending++;
      stage.adopt(env, 'no');
      this.scheduler.schedule(stage);
    });
  }

  private failed(error: BatonError): BatonError {
    this.failure = new BatonError('ERR_PIPELINE_FAILED', `pipeline '${this.name}' stopped: ${error.message}. Its unfinished tasks were dead-lettered; fix the stage and spawn the pipeline again.`, { pipeline: this.name, ...error.details }, error);
    this.status = 'failed';
    this.log.error({ err: this.failure }, 'pipeline failed');
    this.refuseDrainers(this.failure);
    this.first.inbox.wakeAll();
    // Iterators first drain what the termination is about to dead-letter, then end.
    this.feed.endAll();
    return this.failure;
  }
}
