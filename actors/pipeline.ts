import { assertName } from '../src/address.js';
import type { Clock } from '../src/clock.js';
import { BatonError, describe, type ErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Logger } from '../src/logging.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import { agentPolicy, type AgentPolicyOptions } from '../supervisors/agent-policy.js';
import { AgentSupervisor, type StageHost, type StageStats } from '../supervisors/agent-supervisor.js';
import { oneForOne, type StrategyOptions } from '../supervisors/strategy.js';
import { Supervisor } from '../supervisors/supervisor.js';
import type { Agent } from './agent.js';
import { Envelope } from './envelope.js';
import { OutcomeFeed, type Outcome, type OutcomesOptions } from './outcomes.js';

export interface PipelineOptions {
  /** Unique in its system; the first segment of every stage's address (`legal/extract`). */
  readonly name: string;
  /** The agents, in order: by default each hands its output to the next. */
  readonly stages: readonly Agent[];
  /** Policies for every stage; an agent's own options override them field by field. Optional. */
  readonly defaults?: AgentPolicyOptions;
  /**
   * The pipeline supervisor's own intensity: a stage that escalates is restarted (inbox intact)
   * up to `maxRestarts` times within `withinMs`; beyond that the pipeline stops with ERR_PIPELINE_FAILED.
   * Optional; defaults to 3 within 60,000 ms, no backoff.
   */
  readonly supervisor?: StrategyOptions;
}

export interface SendOptions {
  /** Tasks with the same key keep their order at stages with `orderByKey`. Optional. */
  readonly key?: string;
  /** The task's id. Optional; defaults to `<pipeline>-<n>`. A send whose id is still pending is acknowledged without a second task. */
  readonly id?: string;
}

/**
 * What `send` tells its caller: `accepted` (the task will get an outcome), `duplicate` (a task with
 * this id is already pending), `rejected` (the first inbox is full and its overflow policy is
 * 'reject': nothing was accepted), `dropped` (full with policy 'drop': accepted and dead-lettered at once).
 */
export type SendResult = 'accepted' | 'duplicate' | 'rejected' | 'dropped';

export interface PipelineStats {
  readonly name: string;
  readonly status: 'running' | 'stopping' | 'stopped' | 'failed';
  readonly accepted: number;
  readonly pending: number;
  readonly completed: number;
  readonly deadLettered: number;
  readonly stages: readonly StageStats[];
}

export interface PipelineDeps {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  readonly log: Logger;
}

const ACCEPTED: Promise<SendResult> = Promise.resolve('accepted');
const DUPLICATE: Promise<SendResult> = Promise.resolve('duplicate');

/**
 * A named subtree of agent supervisors wired by address. Its own supervisor (one-for-one) only
 * restarts stages that escalate; it never routes messages. It counts tasks in and outcomes out,
 * so `drain` knows when every accepted task has its outcome.
 */
export class Pipeline<I = unknown, O = unknown> implements StageHost {
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  private readonly log: Logger;
  private readonly stageList: AgentSupervisor[];
  private readonly byName = new Map<string, AgentSupervisor>();
  private readonly supervisor: Supervisor;
  private readonly feed: OutcomeFeed;
  private readonly first: AgentSupervisor;
  private readonly pendingIds = new Set<string>();
  private status: PipelineStats['status'] = 'running';
  private failure: BatonError | undefined = undefined;
  private seq = 0;
  private waitingSenders = 0;
  private pending = 0;
  private accepted = 0;
  private completed = 0;
  private deadLettered = 0;
  private drainers: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(options: PipelineOptions, deps: PipelineDeps) {
    if (options === null || typeof options !== 'object') {
      throw new BatonError('ERR_INVALID_OPTION', `spawnPipeline(options) needs { name, stages }; got ${describe(options)}.`, { option: 'pipeline' });
    }
    assertName(options.name, 'pipeline name');
    this.name = options.name;
    if (!Array.isArray(options.stages) || options.stages.length === 0) {
      throw new BatonError('ERR_INVALID_OPTION', `pipeline '${this.name}': stages must be a non-empty array of agent(...) definitions; got ${describe(options.stages)}.`, { option: `${this.name}.stages` });
    }
    ({ scheduler: this.scheduler, clock: this.clock, random: this.random, events: this.events } = deps);
    this.log = deps.log.child({ pipeline: this.name });
    this.feed = new OutcomeFeed(this.log);
    this.supervisor = new Supervisor(this.name, this.name, oneForOne({ maxRestarts: 3, withinMs: 60_000, ...options.supervisor }), deps);
    this.supervisor.onFailed = (err) => this.failed(err);
    const defaults = options.defaults ?? {};
    agentPolicy({}, defaults, `pipeline '${this.name}' defaults`); // validate defaults even if every stage overrides them
    this.stageList = options.stages.map((def, i) => {
      if (def === null || typeof def !== 'object' || (def as Agent).kind !== 'agent') {
        throw new BatonError('ERR_INVALID_OPTION', `pipeline '${this.name}': stages[${i}] must be made with agent({...}); got ${describe(def)}.`, { option: `${this.name}.stages[${i}]` });
      }
      if (this.byName.has(def.name)) {
        throw new BatonError('ERR_DUPLICATE_NAME', `pipeline '${this.name}' has two stages named '${def.name}'; give each stage a unique name.`, { pipeline: this.name, stage: def.name });
      }
      const stage = new AgentSupervisor(this, def, agentPolicy(def, defaults, `stage '${this.name}/${def.name}'`), this.name, this.log);
      this.byName.set(def.name, stage);
      return stage;
    });
    this.stageList.forEach((s, i) => {
      s.next = this.stageList[i + 1] ?? null;
      this.supervisor.add(s, 'permanent');
    });
    this.first = this.stageList[0]!;
  }

  /** Starts every stage (runs each agent's init). Called by the system. */
  start(): this {
    for (const s of this.stageList) s.start();
    return this;
  }

  // ---- producers ----------------------------------------------------------------------------

  /**
   * Accepts one task. Resolves once it is accepted (waiting while the first stage's inbox is full,
   * under the default back-pressure policy). Rejects with ERR_STOPPED once the pipeline stopped.
   */
  send(input: I, options?: SendOptions): Promise<SendResult> {
    if (this.status !== 'running') return Promise.reject(this.stoppedError());
    if (options !== undefined) {
      const bad = this.checkSendOptions(options);
      if (bad !== undefined) return Promise.reject(bad);
      if (options.id !== undefined && this.pendingIds.has(options.id)) return DUPLICATE;
    }
    if (this.waitingSenders === 0 && this.first.inbox.hasRoom()) {
      this.accept(input, options);
      return ACCEPTED;
    }
    const overflow = this.first.policy.mailbox.overflow;
    if (overflow === 'reject') return Promise.resolve('rejected');
    if (overflow === 'drop') {
      const env = this.accept(input, options, false);
      const err = new BatonError('ERR_MAILBOX_FULL', `pipeline '${this.name}': the inbox of '${this.first.path}' is full (capacity ${this.first.policy.mailbox.capacity}) and its overflow policy is 'drop'.`, { stage: this.first.path });
      this.deadLetter(env, this.first, err.code, { name: err.name, message: err.message, code: err.code }, 0);
      return Promise.resolve('dropped');
    }
    return this.sendWhenRoom(input, options);
  }

  /**
   * Sends every input in order, waiting for room as needed; resolves to the number accepted.
   * The batch path: while the first inbox has room, tasks are accepted with no promise each.
   */
  async sendMany(inputs: Iterable<I>, options?: { readonly key?: (input: I, index: number) => string | undefined }): Promise<number> {
    const keyOf = options?.key;
    let n = 0;
    let i = 0;
    for (const input of inputs) {
      const key = keyOf?.(input, i);
      i++;
      if (this.status === 'running' && this.waitingSenders === 0 && this.first.inbox.hasRoom() && (key === undefined || typeof key === 'string')) {
        this.accept(input, key === undefined ? undefined : { key });
        n++;
        continue;
      }
      if ((await this.send(input, key === undefined ? undefined : { key })) === 'accepted') n++;
    }
    return n;
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
    if (options?.id !== undefined && this.pendingIds.has(options.id)) return 'duplicate';
    this.accept(input, options);
    return 'accepted';
  }

  private accept(input: I, options: SendOptions | undefined, enqueue = true): Envelope {
    const env = new Envelope(options?.id, ++this.seq, options?.key, input);
    if (options?.id !== undefined) this.pendingIds.add(options.id);
    this.pending++;
    this.accepted++;
    if (enqueue) this.first.enqueue(env);
    return env;
  }

  private checkSendOptions(o: SendOptions): BatonError | undefined {
    if (typeof o !== 'object' || o === null) return new BatonError('ERR_INVALID_OPTION', `send options must be an object { key?, id? }; got ${describe(o)}.`, { option: 'send' });
    for (const k of ['key', 'id'] as const) {
      const v = o[k];
      if (v !== undefined && (typeof v !== 'string' || v.length === 0)) {
        return new BatonError('ERR_INVALID_OPTION', `pipeline '${this.name}': send option ${k} must be a non-empty string; got ${describe(v)}.`, { option: k, value: v });
      }
    }
    return undefined;
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

  /** Resolves when every accepted task has its outcome; rejects if the pipeline failed. */
  drain(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainers.push({ resolve, reject }));
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

  /** The stage with this name, for tests and tools. */
  stage(name: string): AgentSupervisor | undefined {
    return this.byName.get(name);
  }

  /**
   * Stops accepting, waits up to `drainMs` for pending tasks to finish, then stops every stage:
   * tasks still unfinished become dead letters with ERR_STOPPED (nothing vanishes).
   */
  async stop(options: { readonly drainMs?: number } = {}): Promise<void> {
    if (this.status !== 'running') return;
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
    this.feed.endAll();
  }

  // ---- StageHost ----------------------------------------------------------------------------

  taskId(env: Envelope): string {
    return (env.id ??= `${this.name}-${env.seq}`);
  }

  stageNamed(name: string): AgentSupervisor | undefined {
    return this.byName.get(name);
  }

  complete(env: Envelope, output: unknown, stage: AgentSupervisor, attempts: number): void {
    const fan = env.fan;
    if (fan !== undefined) {
      fan.outputs.push({ stage: stage.name, output });
      if (--fan.open > 0) return;
      if (fan.dead !== undefined) return this.finishFanOut(env, stage, attempts);
      output = fan.outputs;
    }
    this.pending--;
    this.completed++;
    if (env.id !== undefined) this.pendingIds.delete(env.id);
    if (this.feed.listening) {
      this.feed.emit({ id: this.taskId(env), key: env.key, status: 'completed', output, errors: env.errors ?? [], stage: stage.name, attempts });
    }
    if (this.pending === 0) this.drained();
  }

  deadLetter(env: Envelope, stage: AgentSupervisor, code: string, error: ErrorInfo, attempts: number): void {
    const fan = env.fan;
    if (fan !== undefined) {
      fan.dead ??= env;
      if (--fan.open > 0) return;
    }
    this.pending--;
    this.deadLettered++;
    if (env.id !== undefined) this.pendingIds.delete(env.id);
    if (this.feed.listening) {
      const errors = fan?.dead?.errors ?? env.errors ?? [];
      this.feed.emit({ id: this.taskId(env), key: env.key, status: 'dead-lettered', error: { ...error, code }, errors, stage: stage.name, attempts, ...(fan ? { output: fan.outputs as O } : {}) });
    }
    this.events.emit({ type: 'dead-lettered', path: stage.path, at: this.clock.now(), taskId: this.taskId(env), error: { ...error, code } });
    if (this.pending === 0) this.drained();
  }

  /** The last branch of a fanned-out task completed, but an earlier branch was dead-lettered. */
  private finishFanOut(env: Envelope, stage: AgentSupervisor, attempts: number): void {
    const dead = env.fan!.dead!;
    const last = dead.errors?.[dead.errors.length - 1];
    env.fan = { ...env.fan!, open: 1 };
    this.deadLetter(env, stage, last?.error.code ?? 'ERR_TASK_FAILED', last?.error ?? { name: 'Error', message: 'a branch was dead-lettered' }, attempts);
  }

  private drained(): void {
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.resolve();
  }

  private failed(error: BatonError): BatonError {
    this.failure = new BatonError('ERR_PIPELINE_FAILED', `pipeline '${this.name}' stopped: ${error.message}. Its unfinished tasks were dead-lettered; fix the stage and spawn the pipeline again.`, { pipeline: this.name, ...error.details }, error);
    this.status = 'failed';
    this.log.error({ err: this.failure }, 'pipeline failed');
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.reject(this.failure);
    this.first.inbox.wakeAll();
    // Iterators first drain what the termination is about to dead-letter, then end.
    this.feed.endAll();
    return this.failure;
  }
}
