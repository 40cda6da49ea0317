import { randomBytes } from 'node:crypto';
import { DistributedJoins } from './distributed-joins.js';
import { checkJoinOptions, stripJoin, type JoinOptions } from './join-options.js';
import { encodeErrors, FETCH_EXPIRES_MS, NatsStageStore } from './nats-stage-store.js';
import type { Envelope } from '../actors/envelope.js';
import { DEFAULT_OUTCOMES_HIGH_WATER_MARK, OutcomeFeed, type Outcome, type OutcomeIterator, type OutcomesOptions } from '../actors/outcomes.js';
import { encode } from '../src/codec.js';
import { BatonError, invalidOption, toErrorInfo, type ErrorInfo } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import { Mailbox } from '../src/mailbox.js';
import type { StoredOutcome } from '../src/journal/journal.js';
import { ACK_WAIT_MS, PipelineWire, type NatsWire } from '../src/journal/nats-wire.js';
import { oneForOne } from '../policies/strategy.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import type { PipelineDeps, SendOptions, SendResult } from './pipeline-types.js';
import type { ThreadPool } from './thread-pool.js';
import { buildStages, checkPipelineOptions, checkSendOptions } from './pipeline-stages.js';
import type { StageHost, StageInbox, StageStats } from './stage-host.js';
import type { StageStore } from './stage-store.js';
import { outcomeOf } from './stored-outcome.js';
import { SentTasks } from './sent-tasks.js';
import { Supervisor } from './supervisor.js';

/** A distributed pipeline's counts, as seen from this process. */
export interface DistributedStats {
  readonly name: string;
  readonly status: 'running' | 'stopping' | 'stopped' | 'failed';
  /** Tasks this process sent and the pipeline accepted. */
  readonly accepted: number;
  /** Of those, the ones with no outcome yet. */
  readonly pending: number;
  /** Outcomes this process has seen (of any sender's tasks), by status. */
  readonly completed: number;
  readonly deadLettered: number;
  /** The stages hosted here. */
  readonly stages: StageStats[];
}


/**
 * One pipeline whose stages run in several processes (or machines) over NATS JetStream, with no
 * coordinator: each process hosts some stages (`host`), each with its own local agent supervisor
 * (retries, restarts, breaker, timeouts, dead letters), and hands every output to the next stage's
 * subject; whichever process hosts that stage takes it. Two processes hosting one stage share its
 * work. Any process may send, watch outcomes and dead letters, and replay.
 *
 * The stages are the same AgentSupervisors as in one process; what differs is behind the StageHost
 * and StageStore seams: a stage's backlog is its JetStream consumer (a page is a fetch), a handoff is a
 * publish to the next stage and then an ack, an outcome is a publish to the outcomes stream, and a
 * task in hand is kept from redelivery by in-progress acks. See docs/architecture.md, "Across processes".
 */
export class DistributedPipeline<I = unknown, O = unknown> implements StageHost {
  readonly name: string;
  readonly scheduler: StageHost['scheduler'];
  readonly clock: StageHost['clock'];
  readonly random: StageHost['random'];
  readonly events: StageHost['events'];
  private readonly log: Logger;
  private readonly feed: OutcomeFeed;
  private readonly supervisor: Supervisor;
  private readonly hosted = new Map<string, AgentSupervisor>();
  /** The worker pools of the thread agents hosted here, closed when this process's part stops or fails. */
  private readonly pools: ThreadPool[] = [];
  private readonly remotes = new Map<string, RemoteStage>();
  private readonly stores = new Map<string, NatsStageStore>();
  private readonly first: string;
  /** The tasks this process sent, until their outcomes: drain() waits on them. */
  private readonly sent = new SentTasks();
  private status: DistributedStats['status'] = 'running';
  private seq = 0;
  /** Makes this process's generated ids unique across processes. */
  private readonly tag = randomBytes(4).toString('hex');
  private stopOutcomes: (() => void) | undefined;
  private wire!: PipelineWire;
  /** Fan-out across processes (distributed-joins.ts): its state is on the server. */
  private readonly joins: DistributedJoins;
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: JoinOptions,
    private readonly nats: NatsWire,
    deps: PipelineDeps,
  ) {
    this.name = checkPipelineOptions(stripJoin(options));
    ({ scheduler: this.scheduler, clock: this.clock, random: this.random, events: this.events } = deps);
    this.log = deps.log.child({ pipeline: this.name, host: [...options.host] });
    this.feed = new OutcomeFeed(this.log);
    this.supervisor = new Supervisor(this.name, this.name, oneForOne({ maxRestarts: 3, withinMs: 60_000, ...options.supervisor }), deps);
    this.supervisor.onFailed = (err) => this.failed(err);
    const names = options.stages.map((s) => s.name);
    this.first = names[0]!;
    for (const name of names) this.remotes.set(name, new RemoteStage(name));
    this.joins = new DistributedJoins(this.name, () => this.wire, this.events, this.clock);
  }

  /** Joins (making its streams and consumers if it is the first process to) and starts the hosted stages. */
  static async join<I, O>(options: JoinOptions, nats: NatsWire, deps: PipelineDeps): Promise<DistributedPipeline<I, O>> {
    checkJoinOptions(options);
    const p = new DistributedPipeline<I, O>(options, nats, deps);
    await p.open();
    return p;
  }

  private async open(): Promise<void> {
    const { options } = this;
    const hostedDefs = options.stages.filter((s) => options.host.includes(s.name));
    const capacity = Math.max(...options.stages.map((s) => s.mailbox?.capacity ?? options.defaults?.mailbox?.capacity ?? 1_000));
    // Every process must know which stages order by key (it publishes to their partitions), hosted or not.
    const partitions = options.keyPartitions ?? 16;
    const keyed = new Map(options.stages.filter((s) => (s.orderByKey ?? options.defaults?.orderByKey) === true).map((s) => [s.name, partitions] as const));
    this.wire = await PipelineWire.open(this.nats, this.name, options.stages.map((s) => s.name), {
      keepMs: options.keepCompletedMs ?? 24 * 3_600_000,
      maxPending: options.maxPending ?? 1_000_000,
      maxAckPending: Math.max(capacity, 64) * 4,
      ackWaitMs: options.ackWaitMs ?? ACK_WAIT_MS,
      keyed,
    });
    const byName = new Map<string, AgentSupervisor>();
    const stages = hostedDefs.length === 0 ? [] : buildStages(this.name, { ...stripJoin(options), stages: hostedDefs }, this, this.log, byName, this.pools);
    for (const stage of stages) {
      const i = options.stages.findIndex((s) => s.name === stage.name);
      const next = options.stages[i + 1];
      stage.handoff.next = next === undefined ? null : this.remotes.get(next.name)!;
      this.hosted.set(stage.name, stage);
      this.supervisor.add(stage, 'permanent');
    }
    this.stopOutcomes = await this.wire.onOutcomes((o) => this.outcomeArrived(o));
    // In-progress acks for every task in hand (running, retrying, held by a breaker), a third of ack_wait apart.
    this.heartbeat = setInterval(() => {
      for (const store of this.stores.values()) store.keepAlive();
    }, (options.ackWaitMs ?? ACK_WAIT_MS) / 3);
    this.heartbeat.unref();
    for (const stage of this.hosted.values()) {
      stage.start();
      const store = this.stores.get(stage.name)!;
      store.pulling = store.pull(stage.policy.mailbox.capacity, stage.wake);
    }
  }

  // ---- producers ----------------------------------------------------------------------------

  /**
   * Accepts one task: it is on the server, at the first stage, when this resolves. A task sent twice
   * with the same id within the server's de-duplication window (2 min by default) is 'duplicate'.
   */
  async send(input: I, options: SendOptions = {}): Promise<SendResult> {
    if (this.status !== 'running') throw this.stoppedError();
    const bad = checkSendOptions(this.name, options);
    if (bad !== undefined) throw bad;
    const id = options.id ?? `${this.name}-${this.tag}-${++this.seq}`;
    const payload = encode(input, `the input of task ${id}`);
    this.sent.sending(id);
    let result: 'accepted' | 'duplicate';
    try {
      result = await this.wire.publishTask(this.first, { id, key: options.key, hop: 0, life: '0', payload, errors: undefined });
    } catch (err) {
      this.sent.notSent(id);
      throw err;
    }
    if (result === 'duplicate') {
      this.sent.notSent(id);
      return 'duplicate';
    }
    this.sent.accepted++;
    return 'accepted';
  }

  /** Sends each input (one at a time, each on the server before the next); returns how many were accepted. */
  async sendMany(inputs: Iterable<I>): Promise<number> {
    let n = 0;
    for (const input of inputs) if ((await this.send(input)) === 'accepted') n++;
    return n;
  }

  // ---- consumers ----------------------------------------------------------------------------

  /** Calls `listener` with every outcome of the pipeline from now on, whichever process sent the task. */
  onOutcome(listener: (outcome: Outcome<O>) => void): () => void {
    return this.feed.on(listener as (o: Outcome) => void);
  }

  /** The outcomes as an async iterator (see Pipeline.outcomes). */
  outcomes(options: OutcomesOptions = {}): OutcomeIterator<O> {
    const hwm = options.highWaterMark ?? DEFAULT_OUTCOMES_HIGH_WATER_MARK;
    if (!(Number.isInteger(hwm) && hwm >= 1)) throw invalidOption(`pipeline '${this.name}': outcomes highWaterMark`, hwm, 'an integer >= 1');
    return this.feed.iterate(() => this.status === 'stopped' || this.status === 'failed' || (options.untilDrained === true && this.sent.pending === 0), hwm) as OutcomeIterator<O>;
  }

  /** Resolves when every task this process sent has an outcome; rejects if the pipeline failed here. */
  drain(): Promise<void> {
    if (this.status === 'failed') return Promise.reject(this.stoppedError());
    return this.sent.drain();
  }

  /** This process's counts and its hosted stages' stats. */
  stats(): DistributedStats {
    return {
      name: this.name,
      status: this.status,
      accepted: this.sent.accepted,
      pending: this.sent.pending,
      completed: this.sent.completed,
      deadLettered: this.sent.deadLettered,
      stages: [...this.hosted.values()].map((s) => s.stats()),
    };
  }

  /** The dead letters on the server (any process's), oldest first. */
  async deadLetters(): Promise<Outcome<O>[]> {
    return (await this.wire.deadLetters()).map((d) => outcomeOf<O>(d.outcome));
  }

  /** Sends dead letters back to the stage that failed them, attempts reset. Returns how many. */
  async replay(ids: readonly string[]): Promise<number> {
    if (this.status !== 'running') throw this.stoppedError();
    const wanted = new Set(ids);
    let n = 0;
    for (const d of await this.wire.deadLetters()) {
      if (!wanted.has(d.outcome.id)) continue;
      wanted.delete(d.outcome.id);
      this.sent.sending(d.outcome.id); // before the publish: its outcome may come back before the publish's answer does
      await this.wire.replayDead(d);
      n++;
    }
    return n;
  }

  /**
   * Stops this process's part: the hosted stages stop taking tasks, wait up to `drainMs` for the runs
   * in hand, and give back to the server what they still hold (another process, or this one's next
   * start, takes it). The pipeline goes on wherever else it is hosted.
   */
  async stop(options: { readonly drainMs?: number } = {}): Promise<void> {
    if (this.status !== 'running') return;
    this.status = 'stopping';
    // The pull requests end first, on the server (within FETCH_EXPIRES_MS; what one gets meanwhile goes
    // back later, see NatsStageStore.fetchInto), so nothing given back below comes to them: a task given
    // back to a request that was still open there, with nobody here reading it, was taken back by the
    // server as never delivered, and the next process did not look for the attempts it was charged.
    // Closing the connection before they end would lose a task in flight until ackWaitMs (30 s by
    // default: a key partition waited that long behind it).
    for (const store of this.stores.values()) store.stopPulling();
    await Promise.race([Promise.all([...this.stores.values()].map((s) => s.pulling)), new Promise((r) => setTimeout(r, FETCH_EXPIRES_MS * 3).unref())]);
    const until = Date.now() + (options.drainMs ?? 5_000);
    while (Date.now() < until && [...this.hosted.values()].some((s) => s.stats().inFlight > 0)) await new Promise((r) => setTimeout(r, 10));
    this.supervisor.terminate('stopped', new BatonError('ERR_STOPPED', `pipeline '${this.name}' stopped in this process; the task goes back to the server.`, { pipeline: this.name }));
    for (const store of this.stores.values()) store.giveBackAll();
    await Promise.all(this.pools.map((pool) => pool.close()));
    await Promise.all([...this.stores.values()].map((s) => s.idle()));
    clearInterval(this.heartbeat);
    this.stopOutcomes?.();
    this.status = 'stopped';
    this.sent.refuse(this.stoppedError());
    this.feed.endAll();
  }

  // ---- StageHost ----------------------------------------------------------------------------

  /** StageHost: a task's id (every distributed task has one from its send). */
  taskId(env: Envelope): string {
    return (env.id ??= `${this.name}-${this.tag}-x${env.seq}`);
  }

  /** StageHost: where a handoff to `name` goes (always the server: see RemoteStage). */
  stageNamed(name: string): StageInbox | undefined {
    return this.remotes.get(name);
  }

  /** StageHost: the hosted stage's side of the server. */
  storeFor(stage: string): StageStore {
    let store = this.stores.get(stage);
    if (store === undefined) {
      const maxAttempts = (): number => this.hosted.get(stage)?.policy.maxAttempts ?? 3;
      store = new NatsStageStore(stage, this.wire, this.log, maxAttempts, this.pipelineGone);
      this.stores.set(stage, store);
    }
    return store;
  }

  /** StageHost: fan-out across processes (see DistributedJoins). */
  fanOut(env: Envelope, from: string, to: readonly string[]): Envelope[] | BatonError {
    return this.joins.fanOut(env, this.taskId(env), this.stores.get(from)!, from, to);
  }

  /** StageHost: the task left its last stage: its outcome goes to the server, then its message is acked. */
  complete(env: Envelope, _output: unknown, stage: string, attempts: number): void {
    if (this.joins.branchEnded(env, this.taskId(env), this.stores.get(stage)!, [stage, 1, env.bytes!], attempts)) return void (env.bytes = undefined);
    const id = this.taskId(env);
    const o: StoredOutcome = { id, key: env.key, status: 'completed', stage, attempts, output: env.bytes, errors: encodeErrors(env), code: undefined, finishedAt: Date.now() };
    env.bytes = undefined;
    const store = this.stores.get(stage)!;
    const life = store.lifeOf(id);
    store.finish(id, () => this.wire.publishOutcome(o, life), 'ack');
  }

  /** StageHost: the task is quarantined: a dead letter and an outcome go to the server, then its message is terminated. */
  deadLetter(env: Envelope, stage: string, code: string, error: ErrorInfo, attempts: number): void {
    const id = this.taskId(env);
    const last = env.errors?.[env.errors.length - 1]?.error;
    if (last === undefined || last.message !== error.message) (env.errors ??= []).push({ stage, attempt: attempts, at: this.clock.now(), charged: false, error });
    if (this.joins.branchEnded(env, id, this.stores.get(stage)!, [stage, 0, code, encodeErrors(env) ?? null, attempts], attempts)) return;
    this.events.emit({ type: 'dead-lettered', path: `${this.name}/${stage}`, at: this.clock.now(), taskId: id, error: { ...error, code } });
    const o: StoredOutcome = { id, key: env.key, status: 'dead', stage, attempts, output: undefined, errors: encodeErrors(env), code, finishedAt: Date.now() };
    const store = this.stores.get(stage)!;
    const payload = store.payloadOf(id) ?? encode(env.payload ?? null, `the input of task ${id}`);
    const life = store.lifeOf(id);
    store.finish(id, async () => {
      await this.wire.publishDead(o, payload, life);
      await this.wire.publishOutcome(o, life);
    }, 'term');
  }

  /** StageHost: the stage ended with the task in hand: it goes back to the server. */
  abandon(env: Envelope, stage: string): void {
    // The stage ended with the task in hand: the server gives it to another process (or this one's next start).
    this.stores.get(stage)?.giveBack(this.taskId(env));
  }

  // ---- internals ----------------------------------------------------------------------------

  private outcomeArrived(stored: StoredOutcome): void {
    this.sent.ended(stored.id, stored.status);
    let outcome: Outcome<O>;
    try {
      outcome = outcomeOf<O>(stored);
    } catch (err) {
      this.log.error({ err, id: stored.id }, 'an outcome from the server could not be read; skipped');
      return;
    }
    this.feed.emit(outcome as Outcome);
  }

  /** A write to the server failed past its timeout: this process's part of the pipeline stops. */
  private readonly pipelineGone = (err: unknown): void => {
    if (this.status !== 'running') return;
    this.failed(new BatonError('ERR_PIPELINE_FAILED', `pipeline '${this.name}' cannot reach NATS: ${toErrorInfo(err).message}`, { pipeline: this.name }, err));
    this.supervisor.terminate('failed');
    for (const pool of this.pools) void pool.close();
  };

  private failed(error: BatonError): BatonError {
    if (this.status === 'failed') return error;
    this.status = 'failed';
    this.log.error({ err: error }, 'pipeline failed in this process');
    for (const store of this.stores.values()) {
      store.closing = true;
      store.giveBackAll();
    }
    clearInterval(this.heartbeat);
    this.stopOutcomes?.();
    this.sent.refuse(error);
    this.feed.endAll();
    return error;
  }

  private stoppedError(): BatonError {
    return new BatonError('ERR_STOPPED', `pipeline '${this.name}' is ${this.status} in this process; join it again to send more.`, { pipeline: this.name });
  }
}

/** A stage as a handoff sees it: every handoff is a publish, so its inbox always has room and takes nothing here. */
class RemoteStage implements StageInbox {
  readonly inbox = new Mailbox<Envelope>({ capacity: Number.MAX_SAFE_INTEGER, overflow: 'back-pressure' });
  readonly terminated = false;
  constructor(readonly name: string) {}
  enqueue(): void {
    // The task went to the server (NatsStageStore.recordMove): nothing stays in this process.
  }
}
