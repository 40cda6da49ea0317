import type { Clock } from '../src/clock.js';
import { BatonError, describe, invalidOption, isBatonError } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Logger } from '../src/logging.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { AgentSupervisor } from '../supervisors/agent-supervisor.js';
import { oneForOne } from '../supervisors/strategy.js';
import { Supervisor } from '../supervisors/supervisor.js';
import { DurableLog } from './durable-log.js';
import { Envelope } from './envelope.js';
import { OutcomeFeed, type Outcome, type OutcomesOptions } from './outcomes.js';
import type { PipelineDeps, PipelineOptions, PipelineStats, SendOptions, SendResult } from './pipeline-types.js';
import { needJournal, readDeadLetters, readOutcome, replayDeadLetters } from './operator-api.js';
import { PipelineHost } from './pipeline-host.js';
import { recoverPending } from './pipeline-recovery.js';
import { buildStages, checkPipelineOptions, checkSendOptions } from './pipeline-stages.js';

export type { PipelineDeps, PipelineOptions, PipelineStats, SendOptions, SendResult } from './pipeline-types.js';

const ACCEPTED: Promise<SendResult> = Promise.resolve('accepted');
const DUPLICATE: Promise<SendResult> = Promise.resolve('duplicate');

/**
 * A named subtree of agent supervisors wired by address. Its own supervisor (one-for-one) only
 * restarts stages that escalate; it never routes messages. It counts tasks in and outcomes out,
 * so `drain` knows when every accepted task has its outcome.
 */
export class Pipeline<I = unknown, O = unknown> extends PipelineHost<O> {
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
  private readonly first: AgentSupervisor;
  private status: PipelineStats['status'] = 'running';
  private seq = 0;
  private recovered = 0;
  private waitingSenders = 0;
  private accepted = 0;

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
      s.next = this.stageList[i + 1] ?? null;
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
      stageGone: (env, name, attempts, message) => this.deadLetter(env, this.first, 'ERR_UNKNOWN_ADDRESS', { name: 'BatonError', code: 'ERR_UNKNOWN_ADDRESS', message }, attempts, name),
    });
  }

  // ---- producers ----------------------------------------------------------------------------

  /**
   * Accepts one task. Resolves once it is accepted (waiting while the first stage's inbox is full,
   * under the default back-pressure policy). Rejects with ERR_STOPPED once the pipeline stopped.
   */
  send(input: I, options?: SendOptions): Promise<SendResult> {
    if (this.status !== 'running') return Promise.reject(this.stoppedError());
    if (options !== undefined) {
      const bad = checkSendOptions(this.name, options);
      if (bad !== undefined) return Promise.reject(bad);
      if (options.id !== undefined && this.isDuplicate(options.id)) return DUPLICATE;
    }
    if (this.waitingSenders === 0 && this.first.inbox.hasRoom()) {
      if (this.durable === undefined) {
        this.accept(input, options);
        return ACCEPTED;
      }
      try {
        this.accept(input, options);
      } catch (err) {
        return Promise.reject(err);
      }
      return this.durable.committed().then(() => 'accepted' as const);
    }
    const overflow = this.first.policy.mailbox.overflow;
    if (overflow === 'reject') return Promise.resolve('rejected');
    if (overflow === 'drop') {
      let env: Envelope;
      try {
        env = this.accept(input, options, false);
      } catch (err) {
        return Promise.reject(err); // an input the journal cannot hold: a rejection, never a throw
      }
      const err = new BatonError('ERR_MAILBOX_FULL', `pipeline '${this.name}': the inbox of '${this.first.path}' is full (capacity ${this.first.policy.mailbox.capacity}) and its overflow policy is 'drop'.`, { stage: this.first.path });
      this.deadLetter(env, this.first, err.code, { name: err.name, message: err.message, code: err.code }, 0);
      return Promise.resolve('dropped');
    }
    return this.sendWhenRoom(input, options);
  }

  /**
   * Sends every input in order, waiting for room as needed; resolves to the number accepted. If the
   * pipeline stops part-way it rejects with ERR_STOPPED, whose `details.accepted` says how many
   * inputs went in (those go on to their outcomes). The batch path: while the first inbox has room,
   * tasks are accepted with no promise each.
   */
  async sendMany(inputs: Iterable<I>, options?: { readonly key?: (input: I, index: number) => string | undefined }): Promise<number> {
    if (inputs === null || typeof (inputs as Partial<Iterable<I>>)?.[Symbol.iterator] !== 'function') {
      throw new BatonError('ERR_INVALID_INPUT', `pipeline '${this.name}': sendMany takes an iterable of inputs (an array, a Set, a generator); got ${describe(inputs)}.`, { pipeline: this.name });
    }
    if (options !== undefined && (options === null || typeof options !== 'object' || (options.key !== undefined && typeof options.key !== 'function'))) {
      throw invalidOption(`pipeline '${this.name}': sendMany options`, options, '{ key?: (input, index) => string | undefined }');
    }
    const accepted = { n: 0 };
    try {
      await this.sendAll(inputs, options?.key, accepted);
      return accepted.n;
    } catch (err) {
      // Stopped part-way: the inputs accepted so far go on to their outcomes; say how many they are.
      if (isBatonError(err, 'ERR_STOPPED')) throw new BatonError('ERR_STOPPED', `${err.message} (sendMany: ${accepted.n} input(s) were accepted before)`, { ...err.details, accepted: accepted.n }, err);
      throw err;
    }
  }

  private async sendAll(inputs: Iterable<I>, keyOf: ((input: I, index: number) => string | undefined) | undefined, accepted: { n: number }): Promise<void> {
    let i = 0;
    if (keyOf === undefined && this.durable === undefined) {
      // The in-memory batch path, inlined: one Envelope and one inbox push per task while there is room.
      const first = this.first;
      for (const input of inputs) {
        if (this.status === 'running' && this.waitingSenders === 0 && first.inbox.hasRoom()) {
          this.pending++;
          this.accepted++;
          first.enqueue(new Envelope(undefined, ++this.seq, undefined, input));
          accepted.n++;
        } else if ((await this.send(input)) === 'accepted') accepted.n++;
      }
      return;
    }
    for (const input of inputs) {
      const key = keyOf?.(input, i);
      i++;
      if (this.status === 'running' && this.waitingSenders === 0 && this.first.inbox.hasRoom() && (key === undefined || typeof key === 'string')) {
        this.accept(input, key === undefined ? undefined : { key });
        accepted.n++;
        continue;
      }
      if ((await this.send(input, key === undefined ? undefined : { key })) === 'accepted') accepted.n++;
    }
    if (this.durable !== undefined) await this.durable.committed();
  }

  private async sendWhenRoom(input: I, options: SendOptions | undefined): Promise<SendResult> {
    this.waitingSenders++;
    try {
      while (!this.first.inbox.hasRoom()) {
        await this.first.inbox.waitForRoom();
        if (this.status !== 'running') throw this.stoppedError();
      }
    } finally {
      this.waitingSenders--;
    }
    // This sender was woken for a free slot: if it does not take it, the next waiting sender must
    // hear of it, or it waits forever beside an empty inbox.
    if (options?.id !== undefined && this.isDuplicate(options.id)) {
      this.first.inbox.passRoom();
      return 'duplicate';
    }
    try {
      this.accept(input, options);
    } catch (err) {
      this.first.inbox.passRoom();
      throw err;
    }
    if (this.durable !== undefined) await this.durable.committed();
    return 'accepted';
  }

  /** A task with this id is pending here, or the journal holds it (pending or finished). */
  private isDuplicate(id: string): boolean {
    return this.pendingIds.has(id) || (this.durable !== undefined && this.durable.journal.status(id) !== undefined);
  }

  private accept(input: I, options: SendOptions | undefined, enqueue = true): Envelope {
    const durable = this.durable;
    // Encoding first: an input the journal cannot hold is refused before anything is counted.
    const payload = durable?.encode(input, `the input of pipeline '${this.name}'`);
    const env = new Envelope(options?.id, ++this.seq, options?.key, input);
    if (durable !== undefined) {
      const id = this.taskId(env);
      durable.live.add(id);
      durable.push({ op: 'accept', id, seq: env.seq, key: env.key, stage: this.first.name, payload: payload! });
    }
    if (options?.id !== undefined) this.pendingIds.add(options.id);
    this.pending++;
    this.accepted++;
    if (enqueue) this.first.enqueue(env);
    return env;
  }

  private stoppedError(): BatonError {
    if (this.failure !== undefined) return new BatonError('ERR_STOPPED', `pipeline '${this.name}' failed and accepts no more tasks: ${this.failure.message}`, { pipeline: this.name }, this.failure);
    return new BatonError('ERR_STOPPED', `pipeline '${this.name}' is ${this.status} and accepts no more tasks; spawn it again to send more.`, { pipeline: this.name });
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
