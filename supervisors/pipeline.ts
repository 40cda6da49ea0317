import { BatonError, invalidOption } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import type { Scheduler } from '../src/scheduler.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { oneForOne } from '../policies/strategy.js';
import { Supervisor } from './supervisor.js';
import { DurableLog } from './durable-log.js';
import { DEFAULT_OUTCOMES_HIGH_WATER_MARK, OutcomeFeed, type Outcome, type OutcomeIterator, type OutcomesOptions } from '../actors/outcomes.js';
import type { PipelineDeps, PipelineOptions, PipelineStats, SendOptions, SendResult } from './pipeline-types.js';
import { cancelTask, needJournal, readDeadLetters, readOutcome, replayDeadLetters } from './operator-api.js';
import { PipelineIntake } from './pipeline-intake.js';
import { TaskLedger } from './task-ledger.js';
import { FAN_STAGE } from './join-record.js';
import type { Envelope } from '../actors/envelope.js';
import { recoverPending } from './pipeline-recovery.js';
import { buildStages, checkPipelineOptions } from './pipeline-stages.js';
import type { ThreadPool } from './thread-pool.js';
import { StageBudget } from './stage-budget.js';
import { journalKeeper } from './stage-store.js';
import { budgetPolicy } from '../policies/budget.js';

export type { PipelineDeps, PipelineOptions, PipelineStats, SendOptions, SendResult } from './pipeline-types.js';

/**
 * A named subtree of agent supervisors wired by address. Its own supervisor (one-for-one) only
 * restarts stages that escalate; it never routes messages. A small owner of parts:
 *   intake   (pipeline-intake.ts)   send, sendMany, back-pressure, overflow policies, duplicate ids
 *   ledger   (task-ledger.ts)       every accepted task until its outcome: the stages' host, counts, drain
 *   feed     (actors/outcomes.ts)   outcome listeners and async iterators
 *   durable  (durable-log.ts)       the pipeline's side of the journal: group commit, recovery paging
 *   recovery (pipeline-recovery.ts) and the operator API (operator-api.ts): functions over the journal
 * Here: wiring, start, stop, stats, and the pipeline's status.
 */
export class Pipeline<I = unknown, O = unknown> {
  readonly name: string;
  private readonly scheduler: Scheduler;
  private readonly log: Logger;
  private readonly feed: OutcomeFeed;
  private readonly durable: DurableLog | undefined;
  private readonly ledger: TaskLedger;
  private readonly intake: PipelineIntake<I>;
  private readonly byName = new Map<string, AgentSupervisor>();
  /** The pipeline's own budget (options.budget), shared by its stages. */
  private readonly budget: StageBudget | undefined;
  /** The worker pools of thread agents, closed when the pipeline stops. */
  private readonly pools: ThreadPool[] = [];
  private readonly stageList: AgentSupervisor[];
  private readonly first: AgentSupervisor;
  private readonly supervisor: Supervisor;
  private status: PipelineStats['status'] = 'running';
  private stopping: Promise<void> | undefined = undefined;

  constructor(options: PipelineOptions, deps: PipelineDeps) {
    this.name = checkPipelineOptions(options);
    this.scheduler = deps.scheduler;
    this.log = deps.log.child({ pipeline: this.name });
    this.feed = new OutcomeFeed(this.log);
    this.supervisor = new Supervisor(this.name, this.name, oneForOne({ maxRestarts: 3, withinMs: 60_000, ...options.supervisor }), deps);
    this.supervisor.onFailed = (err) => this.failed(err);
    const wall = deps.journal === undefined ? Date.now : () => deps.journal!.now();
    this.durable = deps.journal === undefined ? undefined : new DurableLog(
      deps.journal.openPipeline(this.name),
      wall,
      options.keepCompletedMs ?? 24 * 3600_000,
      this.log,
      (ops, ms) => deps.events.emit({ type: 'journal-committed', path: this.name, at: deps.clock.now(), ops, ms }),
      (err) => {
        // Nothing may run that the journal did not record: the stages stop now, and what they hold
        // stays pending in the journal for the next start (as after a crash).
        const failure = this.failed(new BatonError('ERR_PIPELINE_FAILED', `the journal could not record pipeline '${this.name}': ${err.message}`, { pipeline: this.name }, err));
        this.supervisor.terminate('failed', failure);
        return failure;
      },
    );
    this.ledger = new TaskLedger({ ...deps, name: this.name, feed: this.feed, durable: this.durable, wall, stageNamed: (name) => this.byName.get(name), adopt: (name, env) => this.adopt(name, env), nextSeq: () => ++this.intake.seq });
    this.budget =
      options.budget === undefined
        ? undefined
        : new StageBudget(this.name, budgetPolicy(options.budget, `pipeline '${this.name}'.budget`), deps.events, undefined, this.durable === undefined ? undefined : journalKeeper(this.durable, 'budget/'));
    this.budget?.restore(deps.clock.now());
    this.stageList = buildStages(this.name, options, this.ledger, this.log, this.byName, this.pools, this.budget);
    this.stageList.forEach((s, i) => {
      s.handoff.next = this.stageList[i + 1] ?? null;
      this.supervisor.add(s, 'permanent');
    });
    // Per-key order across a restart: every stage before one that orders by key keeps accepted order too.
    const lastOrdered = this.stageList.map((s) => s.policy.orderByKey).lastIndexOf(true);
    for (let i = 0; i < lastOrdered; i++) this.stageList[i]!.keepAcceptedOrder();
    this.first = this.stageList[0]!;
    this.intake = new PipelineIntake<I>(this, this.first, this.ledger, this.durable);
  }

  /** Whether the pipeline takes tasks (IntakeOwner). */
  get open(): boolean {
    return this.status === 'running';
  }

  /** Recovers what the journal holds for this pipeline, then starts every stage (runs each agent's init). */
  start(): this {
    if (this.durable !== undefined) this.recover(this.durable);
    for (const s of this.stageList) s.start();
    return this;
  }

  /** See recoverPending (pipeline-recovery.ts). */
  private recover(durable: DurableLog): void {
    this.intake.seq = durable.journal.lastSeq();
    recoverPending(durable, {
      name: this.name,
      log: this.log,
      hasStage: (name) => this.byName.has(name),
      countPending: (count) => void (this.ledger.pending += count),
      stageGone: (env, name, attempts, message) => this.ledger.deadLetter(env, name, 'ERR_UNKNOWN_ADDRESS', { name: 'BatonError', code: 'ERR_UNKNOWN_ADDRESS', message }, attempts),
      recoverJoins: (upTo) => this.ledger.joins!.recover(upTo, (env, code, error) => this.ledger.deadLetter(env, FAN_STAGE, code, error, 0)),
    });
  }

  /** Takes a task into a stage beyond its inbox's bound (a replayed task, a fan-out branch); false if there is no such stage. */
  private adopt(name: string, env: Envelope): boolean {
    const stage = this.byName.get(name);
    if (stage === undefined) return false;
    stage.adopt(env, 'no');
    this.scheduler.schedule(stage);
    return true;
  }

  // ---- producers ----------------------------------------------------------------------------

  /**
   * Accepts one task. Resolves once it is accepted (waiting while the first stage's inbox is full,
   * under the default back-pressure policy). Rejects with ERR_STOPPED once the pipeline stopped.
   */
  send(input: I, options?: SendOptions): Promise<SendResult> {
    return this.intake.send(input, options);
  }

  /**
   * Sends every input in order, waiting for room as needed; resolves to the number accepted. If the
   * pipeline stops part-way it rejects with ERR_STOPPED, whose `details.accepted` says how many
   * inputs went in (those go on to their outcomes).
   */
  sendMany(inputs: Iterable<I>, options?: { readonly key?: (input: I, index: number) => string | undefined }): Promise<number> {
    return this.intake.sendMany(inputs, options);
  }

  // ---- consumers ----------------------------------------------------------------------------

  /** Calls `listener` with every outcome from now on; returns a function that unsubscribes. */
  onOutcome(listener: (outcome: Outcome<O>) => void): () => void {
    return this.feed.on(listener as (o: Outcome) => void);
  }

  /** Outcomes from now on, as an async iterator; ends when the pipeline stops (or, with `untilDrained`, when nothing is pending). */
  outcomes(options: OutcomesOptions = {}): OutcomeIterator<O> {
    const hwm = options.highWaterMark ?? DEFAULT_OUTCOMES_HIGH_WATER_MARK;
    if (!(Number.isInteger(hwm) && hwm >= 1)) throw invalidOption(`pipeline '${this.name}': outcomes highWaterMark`, hwm, 'an integer >= 1');
    return this.feed.iterate(() => this.status === 'stopped' || this.status === 'failed' || (options.untilDrained === true && this.ledger.pending === 0), hwm) as OutcomeIterator<O>;
  }

  /** Resolves when every accepted task has its outcome; rejects if the pipeline stops or fails first. */
  drain(): Promise<void> {
    if (this.status === 'stopped' && this.ledger.pending > 0) return Promise.reject(this.stoppedError());
    return this.ledger.drain();
  }

  /** The stage with this name, for tests and tools. */
  stage(name: string): AgentSupervisor | undefined {
    return this.byName.get(name);
  }

  /** The pipeline's counts and each stage's, at this instant. */
  stats(): PipelineStats {
    const l = this.ledger;
    return {
      name: this.name,
      status: this.status,
      accepted: l.accepted,
      pending: l.pending,
      completed: l.completed,
      deadLettered: l.deadLettered,
      deadLetterReasons: [...l.deadByReason].map(([reason, count]) => {
        const space = reason.indexOf(' ');
        return { stage: reason.slice(0, space), code: reason.slice(space + 1), count };
      }),
      ...(this.durable === undefined ? {} : { journal: this.durable.lag() }),
      stages: this.stageList.map((s) => s.stats()),
      ...(this.budget === undefined ? {} : { budget: this.budgetStats(this.budget) }),
    };
  }

  private budgetStats(budget: StageBudget): PipelineStats['budget'] {
    const now = this.ledger.clock.now();
    return { spent: budget.spent(now), resetsAt: budget.spentOut(now) ? budget.resetsAt() : undefined };
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

  private async stopNow(options: { readonly drainMs?: number }): Promise<void> {
    this.status = 'stopping';
    this.intake.wakeSenders();
    const drainMs = options.drainMs ?? 5_000;
    if (this.ledger.pending > 0 && drainMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.ledger.drain().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, drainMs)))]);
      clearTimeout(timer);
    }
    if (this.status === 'stopping') {
      this.supervisor.terminate('stopped', new BatonError('ERR_STOPPED', `pipeline '${this.name}' stopped before this task finished.`, { pipeline: this.name }));
      this.status = 'stopped';
    }
    // The stages took their runs back (which terminated the workers running them): the idle ones go too.
    await Promise.all(this.pools.map((pool) => pool.close()));
    if (this.durable !== undefined) {
      // Unfinished tasks stay pending in the journal; no run is in progress any more.
      this.durable.flush();
      await this.durable.idle();
      if (this.status === 'stopped') this.durable.journal.releaseRunning();
    }
    // With a journal, tasks left unfinished have no outcome yet (they resume on the next start):
    // a drain() waiting for them would wait forever.
    if (this.ledger.pending > 0) this.ledger.refuseDrainers(this.stoppedError());
    this.feed.endAll();
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
  replay(ids: readonly string[], options: { readonly by?: string } = {}): number {
    needJournal(this.durable, this.name, 'replay');
    if (this.status !== 'running') throw this.stoppedError();
    const replayed: string[] = [];
    const n = replayDeadLetters(this.durable!, ids, (name) => name === FAN_STAGE || this.byName.has(name), (stage, env, row) => {
      replayed.push(this.ledger.taskId(env));
      this.ledger.pending++;
      // A fanned-out task runs its dead branches again (its own row holds the join).
      if (stage === FAN_STAGE) this.ledger.joins!.replay(row);
      else this.adopt(stage, env);
    });
    // Audited: an operator's action is an event like any other (system.events, baton:replayed).
    if (replayed.length > 0) this.ledger.events.emit({ type: 'replayed', path: this.name, at: this.ledger.clock.now(), taskIds: replayed, by: options.by ?? 'api' });
    return n;
  }

  /**
   * Cancels an accepted task: it ends now as a dead letter with ERR_CANCELLED (replayable like any
   * dead letter). A task waiting anywhere leaves its queue; a running one has its `ctx.signal`
   * aborted and its late result discarded; one still in the journal's backlog is recorded as
   * cancelled. Returns true if the task was pending here, false if it is unknown or already ended.
   * Throws ERR_INVALID_OPTION for an id that is not a non-empty string.
   */
  cancel(id: string, reason = 'cancelled by the caller'): boolean {
    if (typeof id !== 'string' || id.length === 0) throw invalidOption(`pipeline '${this.name}'.cancel(id)`, id, 'a task id (a non-empty string)');
    if (typeof reason !== 'string') throw invalidOption(`pipeline '${this.name}'.cancel(id, reason)`, reason, 'a string');
    if (this.status !== 'running') return false;
    const ids = this.ledger.joins?.idsToCancel(id) ?? [id];
    const cancelled = cancelTask(id, ids, reason, this.stageList, this.durable, (env, stage, code, error, attempts) => this.ledger.deadLetter(env, stage, code, error, attempts)) > 0;
    if (cancelled) this.ledger.events.emit({ type: 'cancelled', path: this.name, at: this.ledger.clock.now(), taskId: id, reason });
    return cancelled;
  }

  /** The error a send or drain gets once the pipeline stopped or failed (IntakeOwner). */
  stoppedError(): BatonError {
    const failure = this.ledger.failure;
    if (failure !== undefined) return new BatonError('ERR_STOPPED', `pipeline '${this.name}' failed and accepts no more tasks: ${failure.message}`, { pipeline: this.name }, failure);
    return new BatonError('ERR_STOPPED', `pipeline '${this.name}' is ${this.status} and accepts no more tasks; spawn it again to send more.`, { pipeline: this.name });
  }

  private failed(error: BatonError): BatonError {
    const failure = new BatonError('ERR_PIPELINE_FAILED', `pipeline '${this.name}' stopped: ${error.message}. Its unfinished tasks were dead-lettered; fix the stage and spawn the pipeline again.`, { pipeline: this.name, ...error.details }, error);
    this.ledger.failure = failure;
    this.status = 'failed';
    this.log.error({ err: failure }, 'pipeline failed');
    this.ledger.refuseDrainers(failure);
    this.intake.wakeSenders();
    // Iterators first drain what the termination is about to dead-letter, then end.
    this.feed.endAll();
    // Its stages are ended: their worker threads go too (the stages' runs were already taken back).
    for (const pool of this.pools) void pool.close();
    return failure;
  }
}
