import { randomBytes } from 'node:crypto';
import { branchId, isBranchId } from './fan-join.js';
import type { Envelope } from '../actors/envelope.js';
import { DEFAULT_OUTCOMES_HIGH_WATER_MARK, OutcomeFeed, type Outcome, type OutcomeIterator, type OutcomesOptions } from '../actors/outcomes.js';
import { decode, encode } from '../src/codec.js';
import { BatonError, invalidOption, toErrorInfo, type ErrorInfo } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import { Mailbox } from '../src/mailbox.js';
import { checkKeys } from '../src/options.js';
import type { StoredOutcome, StoredTask } from '../src/journal/journal.js';
import { ACK_WAIT_MS, PipelineWire, type NatsWire, type WireTask } from '../src/journal/nats-wire.js';
import { oneForOne } from '../policies/strategy.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { envelopeOf, type PagedTask } from './durable-log.js';
import type { PipelineDeps, PipelineOptions, SendOptions, SendResult } from './pipeline-types.js';
import type { ThreadPool } from './thread-pool.js';
import { buildStages, checkPipelineOptions, checkSendOptions } from './pipeline-stages.js';
import type { StageHost, StageInbox, StageStats } from './stage-host.js';
import type { StageStore } from './stage-store.js';
import { outcomeOf } from './stored-outcome.js';
import { Supervisor } from './supervisor.js';

/** What `system.joinPipeline` takes: a pipeline's options, and the stages this process hosts. */
export interface JoinOptions extends PipelineOptions {
  /**
   * The names of the stages this process runs (their tasks come from any process); the others are
   * hosted elsewhere. Required; [] for a process that only sends and reads outcomes.
   */
  readonly host: readonly string[];
  /** Messages the pipeline's work stream holds at most before `send` waits. Optional; defaults to 1,000,000. */
  readonly maxPending?: number;
  /**
   * How long the server waits for a task in hand before it gives it to another process: the time a
   * killed process's tasks take to come back. In-progress acks every third of it keep long runs.
   * Set by the first process that joins (the stage consumers keep it). Optional; defaults to 30,000 ms.
   */
  readonly ackWaitMs?: number;
  /**
   * Stages that order by key (`orderByKey`) spread their tasks over this many key partitions, each
   * served one task at a time by whichever process asks: a key's tasks keep their order across every
   * process, and at most this many tasks of the stage run at once in all of them. Every process must
   * give the same number (a different one is refused). Optional; defaults to 16 (1-256).
   */
  readonly keyPartitions?: number;
}

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

/** Fetches wait this long for a first message (a long poll): an idle stage asks the server once a second. */
const FETCH_EXPIRES_MS = 1_000;

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
  /** Ids this process sent that have no outcome yet. */
  private readonly mine = new Set<string>();
  private drainers: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private status: DistributedStats['status'] = 'running';
  private accepted = 0;
  private completed = 0;
  private deadLettered = 0;
  private seq = 0;
  /** Makes this process's generated ids unique across processes. */
  private readonly tag = randomBytes(4).toString('hex');
  private stopOutcomes: (() => void) | undefined;
  private wire!: PipelineWire;
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
    this.mine.add(id);
    let result: 'accepted' | 'duplicate';
    try {
      result = await this.wire.publishTask(this.first, { id, key: options.key, hop: 0, life: '0', payload, errors: undefined });
    } catch (err) {
      this.mine.delete(id);
      throw err;
    }
    if (result === 'duplicate') {
      this.mine.delete(id);
      this.settleDrainers();
      return 'duplicate';
    }
    this.accepted++;
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
    return this.feed.iterate(() => this.status === 'stopped' || this.status === 'failed' || (options.untilDrained === true && this.mine.size === 0), hwm) as OutcomeIterator<O>;
  }

  /** Resolves when every task this process sent has an outcome; rejects if the pipeline failed here. */
  drain(): Promise<void> {
    if (this.status === 'failed') return Promise.reject(this.stoppedError());
    if (this.mine.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainers.push({ resolve, reject }));
  }

  /** This process's counts and its hosted stages' stats. */
  stats(): DistributedStats {
    return {
      name: this.name,
      status: this.status,
      accepted: this.accepted,
      pending: this.mine.size,
      completed: this.completed,
      deadLettered: this.deadLettered,
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
      this.mine.add(d.outcome.id); // before the publish: its outcome may come back before the publish's answer does
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
    for (const store of this.stores.values()) store.closing = true;
    const until = Date.now() + (options.drainMs ?? 5_000);
    while (Date.now() < until && [...this.hosted.values()].some((s) => s.stats().inFlight > 0)) await new Promise((r) => setTimeout(r, 10));
    this.supervisor.terminate('stopped', new BatonError('ERR_STOPPED', `pipeline '${this.name}' stopped in this process; the task goes back to the server.`, { pipeline: this.name }));
    for (const store of this.stores.values()) store.giveBackAll();
    // Its pull requests end within FETCH_EXPIRES_MS; a task the server sends one meanwhile is given
    // back at once. Closing the connection before they end would lose such a task in flight until
    // ackWaitMs (30 s by default: a key partition waited that long behind it).
    await Promise.race([Promise.all([...this.stores.values()].map((s) => s.pulling)), new Promise((r) => setTimeout(r, FETCH_EXPIRES_MS * 2).unref())]);
    await Promise.all(this.pools.map((pool) => pool.close()));
    await Promise.all([...this.stores.values()].map((s) => s.idle()));
    clearInterval(this.heartbeat);
    this.stopOutcomes?.();
    this.status = 'stopped';
    this.refuseDrainers(this.stoppedError());
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

  /**
   * StageHost: fan-out across processes. The join record goes to the KV bucket `<bucket>_fan` (made by the
   * first process to fan the task out; one that does it again after a crash keeps the first record),
   * then one task per branch, `<id>#fan<i>`, to each stage, then the task's message is acked. Each
   * branch's end is added to the record with a conditional update (whichever process ends it); the
   * last one publishes the task's outcome and deletes the record. Returns no branch for the stage to
   * hand on: they are on the server. A branch fanning out again is refused.
   */
  fanOut(env: Envelope, from: string, to: readonly string[]): Envelope[] | BatonError {
    const id = this.taskId(env);
    if (isBranchId(id)) {
      return new BatonError('ERR_INVALID_OPTION', `the route of stage '${this.name}/${from}' sent task ${id}, itself a branch of a fanned-out task, to ${to.length} stages; across processes a branch routes to one stage (or null).`, { stage: `${this.name}/${from}` });
    }
    const store = this.stores.get(from)!;
    const input = env.bytes!;
    env.bytes = undefined;
    const fromPayload = store.payloadOf(id) ?? encode(null, `the input of task ${id}`);
    const life = store.lifeOf(id);
    const hop = store.hopOf(id) + 1;
    const errors = encodeErrors(env);
    const key = env.key;
    store.finish(id, async () => {
      const held = decodeJoin(await this.wire.joinCreate(id, encode([1, from, to, input, fromPayload, []], `the fan-out record of task ${id}`)));
      for (const [i, stage] of held.to.entries()) await this.wire.publishTask(stage, { id: branchId(id, i), key, hop, life, payload: held.input, errors });
    }, 'ack');
    return [];
  }

  /**
   * A branch ended here: its end goes into the join record; if it was the last, the task's outcome is
   * published (a dead letter at the stage that fanned out, with that stage's input, if a branch was
   * dead-lettered: a replay fans it out again). False if `env` is not a branch.
   */
  private branchEnded(env: Envelope, stage: string, end: DistributedBranchEnd, attempts: number): boolean {
    const id = this.taskId(env);
    const m = /^([\s\S]*)#fan(\d+)$/.exec(id);
    if (m === null) return false;
    const parent = m[1]!;
    const i = Number(m[2]);
    const store = this.stores.get(stage)!;
    const life = store.lifeOf(id);
    store.finish(id, async () => {
      const done = await this.wire.joinUpdate(parent, (bytes) => {
        const rec = decodeJoin(bytes);
        // Ended before (a branch redone after a crash): nothing to add, but finish the task if that was left undone.
        if (rec.ends.some((e) => e[0] === i)) return { next: undefined, result: rec.ends.length === rec.to.length ? rec : undefined };
        rec.ends.push([i, ...end] as never);
        return { next: encodeJoin(rec, parent), result: rec.ends.length === rec.to.length ? rec : undefined };
      });
      if (done === undefined) return;
      await this.publishJoined(parent, env.key, done, stage, attempts, life);
      await this.wire.joinDelete(parent);
    }, end[1] === 1 ? 'ack' : 'term');
    return true;
  }

  private async publishJoined(id: string, key: string | undefined, rec: JoinRecord, stage: string, attempts: number, life: string): Promise<void> {
    const dead = rec.ends.find((e) => e[2] === 0) as [number, string, 0, string, Uint8Array | null, number] | undefined;
    if (dead === undefined) {
      const outputs = rec.ends.map((e) => ({ stage: e[1], output: decode((e as [number, string, 1, Uint8Array])[3]) }));
      const o: StoredOutcome = { id, key, status: 'completed', stage, attempts, output: encode(outputs, `the joined outputs of task ${id}`), errors: undefined, code: undefined, finishedAt: Date.now() };
      return this.wire.publishOutcome(o, life);
    }
    const o: StoredOutcome = { id, key, status: 'dead', stage: rec.from, attempts: dead[5], output: undefined, errors: dead[4] ?? undefined, code: dead[3], finishedAt: Date.now() };
    this.events.emit({ type: 'dead-lettered', path: `${this.name}/${rec.from}`, at: this.clock.now(), taskId: id, error: { name: 'BatonError', code: dead[3], message: `branch ${dead[0]} of task ${id} (stage '${dead[1]}') was dead-lettered` } });
    await this.wire.publishDead(o, rec.fromPayload, life);
    await this.wire.publishOutcome(o, life);
  }

  /** StageHost: the task left its last stage: its outcome goes to the server, then its message is acked. */
  complete(env: Envelope, _output: unknown, stage: string, attempts: number): void {
    if (this.branchEnded(env, stage, [stage, 1, env.bytes!], attempts)) return void (env.bytes = undefined);
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
    if (this.branchEnded(env, stage, [stage, 0, code, encodeErrors(env) ?? null, attempts], attempts)) return;
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
    if (stored.status === 'completed') this.completed++;
    else this.deadLettered++;
    let outcome: Outcome<O>;
    try {
      outcome = outcomeOf<O>(stored);
    } catch (err) {
      this.log.error({ err, id: stored.id }, 'an outcome from the server could not be read; skipped');
      return;
    }
    if (this.mine.delete(stored.id)) this.settleDrainers();
    this.feed.emit(outcome as Outcome);
  }

  private settleDrainers(): void {
    if (this.mine.size > 0 || this.drainers.length === 0) return;
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.resolve();
  }

  private refuseDrainers(error: BatonError): void {
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.reject(error);
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
    this.refuseDrainers(error);
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

/**
 * One hosted stage's side of the server: its backlog is the stage's consumer (a page is a fetch),
 * a move is a publish to the next stage followed by an ack, a finish an outcome publish followed by
 * an ack (or a term for a dead letter). Owns the tasks in hand (their messages) and keeps them from
 * redelivery with in-progress acks. A task the server delivered before is a suspect (its process
 * probably died with it): it runs alone; one delivered more than maxAttempts times is dead-lettered
 * with ERR_PROCESS_DIED without running.
 */
class NatsStageStore implements StageStore {
  readonly journaled = true;
  /** The stage's pipeline is stopping here: no more fetches. */
  closing = false;
  /** The pull loop (see pull): settles once its last request has ended after `closing`. */
  pulling: Promise<void> = Promise.resolve();
  private readonly held = new Map<string, WireTask>();
  private pending = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly stage: string,
    private readonly wire: PipelineWire,
    private readonly log: Logger,
    private readonly maxAttempts: () => number,
    private readonly gone: (err: unknown) => void,
  ) {}

  encodeOutput(env: Envelope, output: unknown, what: string): void {
    env.bytes = encode(output, what);
  }

  recordFailure(): void {
    // A failed run retries here; the message stays in hand (in-progress acks) until the task ends.
  }

  recordMove(id: string, env: Envelope, to: string): void {
    const t = this.held.get(id);
    const bytes = env.bytes!;
    env.bytes = undefined;
    const hop = (t?.hop ?? 0) + 1;
    const life = t?.life ?? '0';
    this.finish(id, () => this.wire.publishTask(to, { id, key: env.key, hop, life, payload: bytes, errors: encodeErrors(env) }).then(() => undefined), 'ack');
  }

  recordStart(_ids: readonly string[], _isolated: boolean, then: (ok: boolean) => void): void {
    then(true); // the server knows what is in hand: a message not acked comes back after ack_wait
  }

  endIsolation(): void {}

  /** Tasks the consumer delivered that wait to be paged into the stage. */
  hasBacklog(): boolean {
    return this.arrived.length > 0;
  }

  canPage(): boolean {
    return !this.closing && this.arrived.length > 0;
  }

  /** Gives the stage up to `room` delivered tasks, at once (the fetch loop keeps `arrived` filled). */
  // The breaker's hold is each process's own here (not yet shared by the replicas of a stage, nor kept
  // across a restart): a process that restarts during an outage probes it again from closed.
  recordBreaker(): void {}

  storedBreaker(): undefined {
    return undefined;
  }

  wallNow(): number {
    return Date.now();
  }

  keeper(): undefined {
    return undefined;
  }

  page(room: number, _keyOrdered: boolean, take: (tasks: PagedTask[]) => void): void {
    if (!this.canPage() || room <= 0) return;
    take(this.arrived.splice(0, room).map((t) => this.paged(t)));
    this.roomMade?.();
  }

  /**
   * Pulls the stage's tasks while it runs: a fetch of what `arrived` has room for (at most the
   * stage's inbox capacity), each message handed on as it comes (a fetch's iterator yields at once),
   * the stage woken; a full `arrived` waits for the stage to page some in. A stage that orders by
   * key pulls each key partition on its own instead: the server has at most one task of a partition
   * in hand anywhere, so each pull asks for one.
   */
  async pull(capacity: number, wake: () => void): Promise<void> {
    const partitions = this.wire.partitions(this.stage);
    if (partitions !== undefined) {
      await Promise.all(Array.from({ length: partitions }, (_, i) => this.pullPartition(i, wake)));
      return;
    }
    while (!this.closing) {
      const room = capacity - this.arrived.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.roomMade = resolve));
        this.roomMade = undefined;
        continue;
      }
      await this.fetchInto(room, wake, undefined);
    }
  }

  private async pullPartition(partition: number, wake: () => void): Promise<void> {
    while (!this.closing) await this.fetchInto(1, wake, partition);
  }

  /** One pull request: what arrives goes to `arrived` (the stage woken), or back to the server once closing. */
  private async fetchInto(max: number, wake: () => void, partition: number | undefined): Promise<void> {
    try {
      await this.wire.fetch(this.stage, max, FETCH_EXPIRES_MS, (task) => {
        if (this.closing) {
          safely(() => task.msg.nak());
          return false; // and no more on this request: see PipelineWire.fetch
        }
        this.arrived.push(task);
        wake();
        return true;
      }, partition);
    } catch (err) {
      if (this.closing) return;
      this.log.warn({ err: toErrorInfo(err), stage: this.stage, partition }, 'fetch failed; trying again');
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private arrived: WireTask[] = [];
  private roomMade: (() => void) | undefined = undefined;

  private paged(t: WireTask): PagedTask {
    const prior = this.held.get(t.id);
    if (prior !== undefined && prior.msg !== t.msg) safely(() => prior.msg.ack()); // the server sent it again: the newer delivery counts
    this.held.set(t.id, t);
    const row: StoredTask = { id: t.id, seq: t.msg.seq, key: t.key, stage: this.stage, payload: t.payload, attempts: 0, errors: t.errors };
    const env = envelopeOf(row);
    const max = this.maxAttempts();
    if (t.deliveries > max) {
      // Delivered maxAttempts times and never finished: it took its process down each time.
      env.attempts = max - 1;
      return { env, running: 'isolated' };
    }
    return { env, running: t.deliveries > 1 ? 'suspect' : 'no' };
  }

  /** Hops a task in hand has made so far. */
  hopOf(id: string): number {
    return this.held.get(id)?.hop ?? 0;
  }

  /** The life of a task in hand ('0' unless it was replayed). */
  lifeOf(id: string): string {
    return this.held.get(id)?.life ?? '0';
  }

  /** The input a task had at this stage (for its dead letter). */
  payloadOf(id: string): Uint8Array | undefined {
    return this.held.get(id)?.payload;
  }

  /** The task ended here: `publish` its next step, then ack (or term) its message; on failure give it back. */
  finish(id: string, publish: () => Promise<void>, then: 'ack' | 'term'): void {
    const t = this.held.get(id);
    this.held.delete(id);
    this.pending++;
    publish()
      .then(
        () => safely(() => (then === 'ack' ? t?.msg.ack() : t?.msg.term())),
        (err: unknown) => {
          safely(() => t?.msg.nak());
          this.gone(err);
        },
      )
      .catch((err: unknown) => this.log.error({ err: toErrorInfo(err), stage: this.stage }, 'finishing a task failed; the server redelivers it'))
      .finally(() => {
        if (--this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** In-progress acks for everything in hand, and for what waits in `arrived` to be paged in. */
  keepAlive(): void {
    for (const t of this.held.values()) safely(() => t.msg.working());
    for (const t of this.arrived) safely(() => t.msg.working());
  }

  /** Gives a task in hand back to the server at once (a stop, a stage that ended). */
  giveBack(id: string): void {
    const t = this.held.get(id);
    if (t === undefined) return;
    this.held.delete(id);
    safely(() => t.msg.nak());
  }

  giveBackAll(): void {
    for (const id of [...this.held.keys()]) this.giveBack(id);
    for (const t of this.arrived.splice(0)) safely(() => t.msg.nak());
    this.roomMade?.();
  }

  /** Resolves when every publish this store started has been answered. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/**
 * Acks, naks, terms and in-progress acks are fire-and-forget: on a connection that is closing or
 * reconnecting the client may throw, and that must not unwind the stage (the server redelivers what
 * was not acked, after ack_wait).
 */
function safely(op: () => void): void {
  try {
    op();
  } catch {
    // the server will redeliver: at least once, never lost
  }
}

function encodeErrors(env: Envelope): Uint8Array | undefined {
  return env.errors === undefined || env.errors.length === 0 ? undefined : encode(env.errors, 'an error history');
}

/** A branch's end as the distributed join record keeps it, after its index: [stage, 1, output] or [stage, 0, code, history, attempts]. */
type DistributedBranchEnd = [stage: string, ok: 1, output: Uint8Array] | [stage: string, ok: 0, code: string, errors: Uint8Array | null, attempts: number];

/** A distributed fan-out's join record: msgpack [1, from, to, input, fromPayload, ends]. */
interface JoinRecord {
  readonly from: string;
  readonly to: string[];
  readonly input: Uint8Array;
  /** The input the fanning stage had: a dead letter's payload, so a replay fans the task out again. */
  readonly fromPayload: Uint8Array;
  readonly ends: ([number, ...DistributedBranchEnd])[];
}

function decodeJoin(bytes: Uint8Array): JoinRecord {
  const v = decode<unknown[]>(bytes);
  if (!Array.isArray(v) || v[0] !== 1 || typeof v[1] !== 'string' || !Array.isArray(v[2]) || !(v[3] instanceof Uint8Array) || !(v[4] instanceof Uint8Array) || !Array.isArray(v[5])) {
    throw new BatonError('ERR_JOURNAL_CORRUPT', 'a fan-out record in the NATS bucket is not one Baton wrote; delete its key in the <bucket>_fan bucket.', {});
  }
  return { from: v[1], to: v[2] as string[], input: v[3], fromPayload: v[4], ends: v[5] as JoinRecord['ends'] };
}

function encodeJoin(rec: JoinRecord, id: string): Uint8Array {
  return encode([1, rec.from, rec.to, rec.input, rec.fromPayload, rec.ends], `the fan-out record of task ${id}`);
}

function stripJoin(options: JoinOptions): PipelineOptions {
  const { host: _host, maxPending: _max, ackWaitMs: _ack, keyPartitions: _parts, ...rest } = options;
  return rest;
}

function checkJoinOptions(options: JoinOptions): void {
  if (options === null || typeof options !== 'object') throw invalidOption('joinPipeline(options)', options, 'an object { name, stages, host }');
  checkKeys(options, ['name', 'stages', 'defaults', 'supervisor', 'keepCompletedMs', 'host', 'maxPending', 'ackWaitMs', 'keyPartitions'], `joinPipeline '${String(options.name)}'`);
  if (options.keyPartitions !== undefined && !(Number.isInteger(options.keyPartitions) && options.keyPartitions >= 1 && options.keyPartitions <= 256)) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.keyPartitions`, options.keyPartitions, 'an integer from 1 to 256');
  }
  if (options.ackWaitMs !== undefined && !(Number.isInteger(options.ackWaitMs) && options.ackWaitMs >= 1_000)) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.ackWaitMs`, options.ackWaitMs, 'an integer number of ms >= 1,000');
  }
  const names = Array.isArray(options.stages) ? options.stages.map((s) => s?.name) : [];
  if (!Array.isArray(options.host) || !options.host.every((h) => typeof h === 'string')) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.host`, options.host, `a list of the stage names this process runs (of ${names.join(', ')}), [] for none`);
  }
  for (const h of options.host) {
    if (!names.includes(h)) throw invalidOption(`joinPipeline '${String(options.name)}'.host`, h, `a stage of the pipeline (${names.join(', ')})`);
  }
  if (options.maxPending !== undefined && !(Number.isInteger(options.maxPending) && options.maxPending >= 1)) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.maxPending`, options.maxPending, 'an integer >= 1');
  }
}
