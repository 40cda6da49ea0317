import { Pipeline, type PipelineOptions } from '../supervisors/pipeline.js';
import type { SupervisedChild } from '../supervisors/child.js';
import { isStrategy, oneForOne, RESTART_TYPES, type RestartType, type SupervisorStrategy } from '../policies/strategy.js';
import { stopInOrder, Supervisor, type ChildState } from '../supervisors/supervisor.js';
import { checkShutdownMs, type ActorDefinition, type ActorRef, type Delivery } from '../actors/actor.js';
import { ActorCell, unknownAddress } from '../supervisors/actor-cell.js';
import { assertName, type Address } from '../src/address.js';
import { systemClock, type Clock } from '../src/clock.js';
import { DeadLetters } from '../src/dead-letters.js';
import { DeathWatch, type Terminated } from '../src/death-watch.js';
import { BatonError, describe, invalidOption, toErrorInfo } from '../src/errors.js';
import { EventStream, type BatonEvent } from '../src/events.js';
import { checkKeys } from '../src/options.js';
import { metricFamilies, prometheusText, type MetricFamily, type StageTimes, type SystemSnapshot } from './prometheus.js';
import { RunTimings, type StageHistogram } from './run-timings.js';
import { observe, type ObserveOptions, type Observer } from './observe.js';
import type { Journal } from '../src/journal/journal.js';
import type { NatsJournal } from '../src/journal/nats.js';
import { DistributedPipeline } from '../supervisors/distributed-pipeline.js';
import type { JoinOptions } from '../supervisors/join-options.js';
import { createLogger, type Logger, type LoggerOption } from '../src/logging.js';
import { mailboxPolicy, type MailboxOptions } from '../src/mailbox.js';
import { seededRandom, type Random } from '../src/random.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler.js';

/** What `createSystem` takes. Every option is optional. */
export interface SystemOptions {
  /** A pino logger, or false for none. Optional; defaults to pino at BATON_LOG_LEVEL (info) on stderr. */
  readonly logger?: LoggerOption;
  /** Optional; defaults to the real clock. Pass `simulatedClock()` in tests. */
  readonly clock?: Clock;
  /** A seed or a random source for jitter. Optional; defaults to Math.random. */
  readonly random?: number | Random;
  /** Dispatcher tuning. Optional; defaults to 64 messages per actor turn, 8 ms slices. */
  readonly scheduler?: SchedulerOptions;
  /**
   * Where pipelines keep accepted tasks until they have an outcome: `sqliteJournal(path)` (durable),
   * `memoryJournal()`. Optional; defaults to none: tasks live in memory only. The system closes it at shutdown.
   */
  readonly journal?: Journal;
  /**
   * Keep how long handler runs take, per stage, as histograms (`baton_stage_run_seconds` in
   * metrics(), `runTimes()`). Optional; defaults to false: it listens on the baton:run tracing channel,
   * so every run takes its stage's general lane (about a quarter of the sync fast lane's throughput,
   * no difference for handlers that wait on I/O). See system/run-timings.ts.
   */
  readonly timings?: boolean;
}

/**
 * How a supervisor starts one child. `restart`: optional; defaults to 'permanent'. `shutdownMs`: how
 * long an orderly stop (terminateChild, system.shutdown) waits for the child to finish the message
 * in hand, wall-clock; 0 ends it at once, Infinity waits; optional; defaults to 5,000 ms for an
 * actor and Infinity for a supervisor (whose own children have their timeouts), as in OTP.
 */
export type ChildSpec =
  | { readonly name: string; readonly actor: ActorDefinition<any, any>; readonly restart?: RestartType; readonly mailbox?: MailboxOptions; readonly shutdownMs?: number }
  | { readonly name: string; readonly supervisor: SupervisorSpec; readonly restart?: RestartType; readonly shutdownMs?: number };

export type { ChildState } from '../supervisors/supervisor.js';

/** How many children a supervisor has (OTP's count_children). */
export interface ChildCounts {
  /** Every child it knows, running or terminated with its spec kept. */
  readonly specs: number;
  /** Children running or waiting out a restart. */
  readonly active: number;
  readonly supervisors: number;
  readonly workers: number;
}

/**
 * A running supervision tree, or a subtree of one: its children can be started, stopped, restarted
 * and listed while it runs (OTP's supervisor API). Child names are the names in the specs; a child
 * of a subtree is reached through `supervisor(name)`.
 */
export interface SupervisorRef {
  readonly path: string;
  /** The ref of the actor child `name` (at `<supervisor>/<name>`); throws ERR_UNKNOWN_ADDRESS if there is none running. */
  child<M>(name: string): ActorRef<M>;
  /** The subtree child `name`; throws ERR_UNKNOWN_ADDRESS if there is none running. */
  supervisor(name: string): SupervisorRef;
  /**
   * Adds a child at the end of the start order and starts it (OTP's start_child). Throws
   * ERR_DUPLICATE_NAME if the name is taken (even by a terminated child: delete it first),
   * ERR_INVALID_OPTION for a bad spec, ERR_STOPPED if the supervisor has ended, ERR_START_FAILED if
   * the child's init failed so often that the supervisor gave up.
   */
  startChild(spec: ChildSpec): void;
  /**
   * Stops the child in order (its shutdownMs) and keeps its spec for restartChild; a temporary
   * child's spec is deleted. Not a failure: nothing is restarted. Resolves when it has ended.
   * Throws ERR_UNKNOWN_ADDRESS for an unknown name.
   */
  terminateChild(name: string): Promise<void>;
  /** Starts a terminated child again from its spec. Throws ERR_CHILD_RUNNING if it runs, ERR_UNKNOWN_ADDRESS if there is no such child. */
  restartChild(name: string): void;
  /** Forgets a terminated child's spec. Throws ERR_CHILD_RUNNING if it runs, ERR_UNKNOWN_ADDRESS if there is no such child. */
  deleteChild(name: string): void;
  /** Every child in start order with its kind, restart type and status (OTP's which_children). */
  children(): ChildState[];
  /** OTP's count_children. */
  countChildren(): ChildCounts;
}

/** A supervision tree: its strategy and its children, started in order. */
export interface SupervisorSpec {
  /** Optional; defaults to oneForOne(): 3 restarts within 5 s, no backoff. */
  readonly strategy?: SupervisorStrategy;
  readonly children: readonly ChildSpec[];
}

export type { Terminated } from '../src/death-watch.js';

/** Options of `system.shutdown()`. */
export interface ShutdownOptions {
  /** How long pipelines may take to finish pending tasks before they are dead-lettered. Optional; defaults to 5,000 ms. */
  readonly drainMs?: number;
}

/**
 * Hosts supervision trees inside one Node process and owns what they share: the scheduler,
 * clock, random source, logger, lifecycle events and dead letters.
 */
export class ActorSystem {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly events: EventStream;
  readonly deadLetters: DeadLetters;
  readonly scheduler: Scheduler;
  readonly journal: Journal | undefined;
  private readonly cells = new Map<string, ActorCell<any, any>>();
  private readonly pipelines = new Map<string, Pipeline<any, any>>();
  private readonly roots = new Map<string, SupervisedChild>();
  private readonly supervisors = new Map<string, Supervisor>();
  private readonly deathWatch: DeathWatch;
  private stopped = false;

  constructor(options: SystemOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidOption('createSystem(options)', options, 'an object (or nothing)');
    checkKeys(options, ['logger', 'clock', 'random', 'scheduler', 'journal', 'timings'], 'createSystem(options)');
    if (options.timings !== undefined && typeof options.timings !== 'boolean') throw invalidOption('timings', options.timings, 'true or false');
    const { logger, clock, random } = options;
    if (clock !== undefined && (typeof clock?.now !== 'function' || typeof clock?.setTimer !== 'function')) {
      throw invalidOption('clock', clock, 'a Clock { now(), setTimer(ms, fn) } such as simulatedClock()');
    }
    if (random !== undefined && typeof random !== 'number' && typeof random !== 'function') throw invalidOption('random', random, 'a seed number or a () => number in [0, 1)');
    if (logger !== undefined && logger !== false && (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function' || typeof logger.info !== 'function')) {
      throw invalidOption('logger', logger, 'a pino logger, or false for none');
    }
    const sched = options.scheduler;
    if (sched !== undefined) {
      if (sched === null || typeof sched !== 'object') throw invalidOption('scheduler', sched, 'an object { throughput?, sliceMs? }');
      checkKeys(sched, ['throughput', 'sliceMs'], 'createSystem(options).scheduler');
      if (sched.throughput !== undefined && !(Number.isInteger(sched.throughput) && sched.throughput >= 1)) throw invalidOption('scheduler.throughput', sched.throughput, 'an integer >= 1');
      if (sched.sliceMs !== undefined && !(typeof sched.sliceMs === 'number' && sched.sliceMs > 0)) throw invalidOption('scheduler.sliceMs', sched.sliceMs, 'a number of milliseconds > 0');
    }
    this.log = createLogger(logger);
    this.clock = clock ?? systemClock;
    this.random = typeof random === 'number' ? seededRandom(random) : (random ?? Math.random);
    this.events = new EventStream(this.log);
    this.deathWatch = new DeathWatch(this.log, (address) => this.cells.has(address) || this.roots.has(address) || this.supervisors.has(address) || this.livePipelineAddress(address));
    this.events.on(this.onStopped);
    this.deadLetters = new DeadLetters(this.log);
    this.scheduler = new Scheduler(options.scheduler);
    const journal = options.journal;
    if (journal !== undefined && (journal === null || typeof journal.openPipeline !== 'function')) {
      throw invalidOption('journal', journal, 'a Journal such as sqliteJournal(path) or memoryJournal()');
    }
    this.journal = journal;
    if (options.timings === true) this.timings = new RunTimings();
  }

  private readonly timings: RunTimings | undefined;

  /**
   * How long handler runs took, per stage (`<pipeline>/<stage>`): a count per bucket of RUN_BUCKETS (the
   * last above them all), their sum in seconds, and how many. Empty unless createSystem({ timings: true }).
   */
  runTimes(): ReadonlyMap<string, Readonly<StageHistogram>> {
    return this.timings?.histograms() ?? new Map();
  }

  /** How long tasks waited in each stage's inbox before their first run there: as runTimes(), same buckets. */
  queueTimes(): ReadonlyMap<string, Readonly<StageHistogram>> {
    return this.timings?.queueTimes() ?? new Map();
  }

  private stageTimes(): StageTimes | undefined {
    return this.timings === undefined ? undefined : { run: this.timings.histograms(), queued: this.timings.queueTimes() };
  }

  /** The system at this instant: every pipeline's stats (with its stages), its actors and supervisors. */
  snapshot(): SystemSnapshot {
    return {
      at: this.clock.now(),
      pipelines: [...this.pipelines.values()].map((p) => p.stats()),
      actors: [...this.cells.values()].map((c) => ({ path: c.path, terminated: c.terminated })),
      supervisors: [...this.supervisors.values()].map((s) => ({ path: s.path, terminated: s.terminated })),
    };
  }

  /**
   * The snapshot as Prometheus text (exposition format 0.0.4): serve it at /metrics, or hand it to
   * your own registry. Labelled by pipeline and stage only. See system/prometheus.ts for the families.
   */
  metrics(): string {
    return prometheusText(this.snapshot(), this.stageTimes());
  }

  /**
   * Every metric family as data, for a registry of your own: see promClientMetrics (prom-client) or
   * render them yourself. The same families for every call, samples from this instant.
   */
  metricFamilies(): MetricFamily[] {
    return metricFamilies(this.snapshot(), this.stageTimes());
  }

  /**
   * Serves the live page: the supervision tree with each stage's state, inbox, throughput, restarts,
   * breaker and throttle, updated by Server-Sent Events; dead letters with a replay button; /metrics.
   * On 127.0.0.1 and a free port by default; requests for another Host are refused; actions need the
   * per-process token (in the page, and in the result for scripts); `readOnly` refuses them. Closed at
   * shutdown. Resolves once it listens.
   */
  async observe(options: ObserveOptions = {}): Promise<Observer> {
    this.assertRunning();
    const observer = await observe(
      {
        snapshot: () => this.snapshot(),
        metrics: () => this.metrics(),
        onEvent: (listener) => this.events.on(listener),
        deadLetters: (name) => this.pipeline(name).deadLetters({ limit: 100 }),
        replay: (name, ids, by) => this.pipeline(name).replay(ids, { by }),
      },
      options,
    );
    this.observers.push(observer);
    return observer;
  }

  private readonly observers: Observer[] = [];

  /**
   * Spawns a top-level actor. Without a supervisor a crash stops it (its message becomes a dead
   * letter). `shutdownMs`: how long system.shutdown() waits for the message in hand; optional,
   * defaults to 5,000 ms.
   */
  spawn<M, S>(def: ActorDefinition<M, S>, options: { readonly name: string; readonly mailbox?: MailboxOptions; readonly shutdownMs?: number }): ActorRef<M> {
    this.assertRunning();
    if (options === null || typeof options !== 'object') throw invalidOption('spawn(def, options)', options, 'an object { name, mailbox?, shutdownMs? }');
    checkKeys(options, ['name', 'mailbox', 'shutdownMs'], 'spawn(def, options)');
    checkShutdownMs(options.shutdownMs, `actor '${String(options.name)}'.shutdownMs`);
    const cell = this.makeCell(def, options.name, options.name, options.mailbox);
    this.roots.set(options.name, cell);
    this.rootShutdownMs.set(options.name, options.shutdownMs ?? 5_000);
    cell.start();
    return cell;
  }

  private readonly rootShutdownMs = new Map<string, number>();

  /** Spawns a supervision tree of plain actors. Children start in order; child refs are at `<name>/<child>`. */
  spawnSupervisor(options: { readonly name: string } & SupervisorSpec): SupervisorRef {
    this.assertRunning();
    assertName(options?.name, 'supervisor name');
    this.claimName(options.name);
    const sup = this.withRollback(() => this.buildSupervisor(options.name, options.name, options));
    let failure: unknown;
    sup.onFailed = (err) => {
      failure = err;
      this.log.error({ err }, 'supervisor gave up');
      return err;
    };
    this.roots.set(options.name, sup);
    this.startTree(sup);
    // The tree gave up while it was starting (a child's init kept throwing past the intensity): the
    // caller must learn it here, not from a handle to a dead tree (watch() then said 'unknown').
    if (sup.terminated) {
      const cause = toErrorInfo(failure);
      throw new BatonError('ERR_START_FAILED', `supervisor '${options.name}' could not start its children: ${cause.message}. Fix the child's init (or raise the strategy's maxRestarts) and spawn it again.`, { supervisor: options.name }, failure);
    }
    return this.supervisor(options.name);
  }

  /** The running supervisor (tree or subtree) at `path`, such as 'sup' or 'sup/sub'. Throws ERR_UNKNOWN_ADDRESS if there is none. */
  supervisor(path: string): SupervisorRef {
    const sup = this.supervisors.get(path);
    if (sup === undefined) throw unknownAddress(path);
    const named = (name: string): void => {
      if (!sup.has(name)) throw unknownAddress(`${path}/${String(name)}`);
    };
    return {
      path,
      child: <M>(name: string) => this.lookup<M>(`${path}/${name}` as Address<M>),
      supervisor: (name: string) => this.supervisor(`${path}/${name}`),
      startChild: (spec: ChildSpec) => this.startChild(sup, spec),
      terminateChild: async (name: string) => {
        named(name);
        await sup.terminateChild(name);
      },
      restartChild: (name: string) => {
        named(name);
        if (sup.terminated) throw this.supervisorEnded(path);
        const restarted = this.withRollback(() => sup.restartChild(name));
        if (restarted !== true) throw childRunning(path, name, 'restart', restarted);
        const child = sup.children.find((c) => c.name === name)!;
        if (sup.running) this.startTree(child);
      },
      deleteChild: (name: string) => {
        named(name);
        const deleted = sup.deleteChild(name);
        if (deleted !== true) throw childRunning(path, name, 'delete', deleted);
      },
      children: () => sup.describeChildren(),
      countChildren: () => {
        const all = sup.describeChildren();
        const supervisors = all.filter((c) => c.kind === 'supervisor').length;
        return { specs: all.length, active: all.filter((c) => c.status !== 'terminated').length, supervisors, workers: all.length - supervisors };
      },
    };
  }

  /**
   * Runs `make`, which registers cells and supervisors as it builds a tree; if it throws (a bad child
   * spec anywhere in the tree), nothing it registered stays: an address that takes messages and
   * never starts would swallow them, and a corrected retry would find its names taken.
   */
  private withRollback<T>(make: () => T): T {
    const cellsBefore = new Set(this.cells.keys());
    const supervisorsBefore = new Set(this.supervisors.keys());
    try {
      return make();
    } catch (err) {
      for (const path of [...this.cells.keys()]) if (!cellsBefore.has(path)) this.cells.delete(path);
      for (const path of [...this.supervisors.keys()]) if (!supervisorsBefore.has(path)) this.supervisors.delete(path);
      throw err;
    }
  }

  private startChild(sup: Supervisor, spec: ChildSpec): void {
    this.assertRunning();
    if (sup.terminated) throw this.supervisorEnded(sup.path);
    if (spec !== null && typeof spec === 'object' && sup.has(spec.name)) {
      throw new BatonError('ERR_DUPLICATE_NAME', `supervisor '${sup.path}' already has a child '${spec.name}'; choose another name, or deleteChild it first if it is terminated.`, { name: `${sup.path}/${spec.name}` });
    }
    this.withRollback(() => this.addChild(sup, sup.path, spec));
    const child = sup.children[sup.children.length - 1]!;
    if (!sup.running) return; // a tree restarting starts it with the others
    this.startTree(child);
    if (sup.terminated) {
      throw new BatonError('ERR_START_FAILED', `supervisor '${sup.path}' gave up while child '${spec.name}' was starting; fix the child's init (or raise the strategy's maxRestarts).`, { supervisor: sup.path, child: spec.name });
    }
  }

  private supervisorEnded(path: string): BatonError {
    return new BatonError('ERR_STOPPED', `supervisor '${path}' has ended; spawn the tree again.`, { supervisor: path });
  }

  /** Spawns a pipeline of agents under its own supervisor and starts it. */
  spawnPipeline<I = unknown, O = unknown>(options: PipelineOptions): Pipeline<I, O> {
    this.assertRunning();
    assertName(options?.name, 'pipeline name');
    this.claimName(options.name);
    const pipeline = new Pipeline<I, O>(options, { scheduler: this.scheduler, clock: this.clock, random: this.random, events: this.events, log: this.log, journal: this.journal });
    this.pipelines.set(options.name, pipeline);
    return pipeline.start();
  }

  /**
   * Joins a pipeline that runs across processes (or machines) on NATS JetStream: this process runs
   * the stages named in `host` (each with its own agent supervisor) and may send, watch outcomes and
   * replay dead letters; other processes join the same pipeline with the same stages and host the
   * rest. Needs a system made with `journal: await natsJetStream(...)`; throws ERR_INVALID_OPTION
   * otherwise. Resolves once the pipeline's streams exist and the hosted stages have started.
   */
  async joinPipeline<I = unknown, O = unknown>(options: JoinOptions): Promise<DistributedPipeline<I, O>> {
    this.assertRunning();
    const journal = this.journal as NatsJournal | undefined;
    if (journal?.kind !== 'nats' || journal.wire === undefined) {
      throw invalidOption('joinPipeline: createSystem({ journal })', journal?.kind, 'a NATS journal: createSystem({ journal: await natsJetStream({ servers }) })');
    }
    assertName(options?.name, 'pipeline name');
    this.claimName(options.name);
    const pipeline = await DistributedPipeline.join<I, O>(options, journal.wire, { scheduler: this.scheduler, clock: this.clock, random: this.random, events: this.events, log: this.log, journal: undefined });
    this.distributed.set(options.name, pipeline);
    return pipeline;
  }

  private readonly distributed = new Map<string, DistributedPipeline<any, any>>();

  /** The pipeline spawned under `name`. Throws ERR_UNKNOWN_ADDRESS if there is none. */
  pipeline<I = unknown, O = unknown>(name: string): Pipeline<I, O> {
    const p = this.pipelines.get(name);
    if (p === undefined) throw unknownAddress(name);
    return p as Pipeline<I, O>;
  }

  /** The live actor at `address`; throws ERR_UNKNOWN_ADDRESS if there is none. */
  lookup<M>(address: Address<M> | string): ActorRef<M> {
    const cell = this.cells.get(address);
    if (cell === undefined) throw unknownAddress(address);
    return cell as ActorRef<M>;
  }

  /** Sends to an address; an unknown address is a dead letter and the result 'stopped', never a throw. */
  tell<M>(address: Address<M> | string, message: M): Delivery {
    const cell = this.cells.get(address);
    if (cell !== undefined) return cell.tell(message);
    this.deadLetters.publish({ to: address, message, reason: 'unknown-address', error: toErrorInfo(unknownAddress(address)), at: this.clock.now() });
    return 'stopped';
  }

  /**
   * Death watch: `listener` is told once when the actor, supervisor, pipeline or stage at `address`
   * ends for good (not when it restarts). Watching an address with nothing there tells at once,
   * with reason 'unknown'. Returns a function that stops watching.
   */
  watch(address: string, listener: (t: Terminated) => void): () => void {
    return this.deathWatch.watch(address, listener);
  }

  /**
   * Stops everything: pipelines stop accepting, get `drainMs` to finish, and dead-letter what is
   * left (ERR_STOPPED); actors and supervisors are terminated. Idempotent.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    // A second call waits for the shutdown under way (it resolved at once while the first still drained).
    return (this.shuttingDown ??= this.shutdownNow(options));
  }

  private shuttingDown: Promise<void> | undefined = undefined;

  private async shutdownNow(options: ShutdownOptions): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pipelines.values()].map((p) => p.stop(options)));
    await Promise.all([...this.distributed.values()].map((p) => p.stop(options)));
    await Promise.all(this.observers.map((o) => o.close()));
    // Trees stop in order (last child first, each within its shutdownMs); roots last spawned first.
    for (const [name, root] of [...this.roots.entries()].reverse()) {
      await stopInOrder(root, root instanceof Supervisor ? Infinity : (this.rootShutdownMs.get(name) ?? 5_000));
    }
    await this.journal?.close();
    this.timings?.close();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** A running pipeline's name, or `pipeline/stage` for one of its stages that has not terminated. */
  private livePipelineAddress(address: string): boolean {
    const slash = address.indexOf('/');
    const pipeline = this.pipelines.get(slash < 0 ? address : address.slice(0, slash));
    if (pipeline === undefined) return false;
    const status = pipeline.stats().status;
    if (status === 'stopped' || status === 'failed') return false;
    if (slash < 0) return true;
    const stage = pipeline.stage(address.slice(slash + 1));
    return stage !== undefined && !stage.terminated;
  }

  /** Pipelines and their stages end through their supervisors, which say so with a 'stopped' event. */
  private readonly onStopped = (e: BatonEvent): void => {
    if (e.type !== 'stopped' || !this.deathWatch.watched(e.path)) return;
    const slash = e.path.indexOf('/');
    if (this.pipelines.has(slash < 0 ? e.path : e.path.slice(0, slash))) this.deathWatch.ended(e.path, e.reason);
  };

  private assertRunning(): void {
    if (this.stopped) throw new BatonError('ERR_STOPPED', 'the actor system is shut down; create a new one with createSystem().', {});
  }

  private claimName(name: string): void {
    const old = this.pipelines.get(name);
    // A stopped or failed pipeline's name may be spawned again: that is how a pipeline resumes its journal.
    if (old !== undefined && (old.stats().status === 'stopped' || old.stats().status === 'failed')) this.pipelines.delete(name);
    if (this.roots.has(name) || this.pipelines.has(name) || this.cells.has(name) || this.distributed.get(name)?.stats().status === 'running') {
      throw new BatonError('ERR_DUPLICATE_NAME', `'${name}' is already taken in this system; choose another name or stop the old one first.`, { name });
    }
  }

  private makeCell<M, S>(def: ActorDefinition<M, S>, name: string, path: string, mailbox?: MailboxOptions): ActorCell<M, S> {
    assertName(name, 'actor name');
    if (def === null || typeof def !== 'object' || def.kind !== 'actor') throw invalidOption(`actor '${path}'`, def, 'a definition made with actor({...})');
    if (path === name) this.claimName(name);
    if (this.cells.has(path)) throw new BatonError('ERR_DUPLICATE_NAME', `two children are named '${path}'; give each child a unique name.`, { name: path });
    const policy = mailboxPolicy({ ...def.mailbox, ...mailbox }, `actor '${path}' mailbox`);
    const cell = new ActorCell<M, S>(name, path as Address<M>, def, policy, {
      scheduler: this.scheduler,
      clock: this.clock,
      events: this.events,
      deadLetters: this.deadLetters,
      random: this.random,
      makeChild: (d, n, p, m) => this.makeCell(d, n, p, m),
      onTerminated: (c, reason, error) => this.ended(c.path, c, reason, error),
    }, this.log);
    this.cells.set(path, cell);
    return cell;
  }

  private buildSupervisor(name: string, path: string, spec: SupervisorSpec): Supervisor {
    if (!Array.isArray(spec?.children)) throw invalidOption(`supervisor '${path}'.children`, spec?.children, 'an array of child specs');
    if (spec.strategy !== undefined && !isStrategy(spec.strategy)) {
      throw invalidOption(`supervisor '${path}'.strategy`, spec.strategy, 'a strategy made by oneForOne(), oneForAll() or restForOne()');
    }
    const sup = new Supervisor(name, path, spec.strategy ?? oneForOne(), { clock: this.clock, random: this.random, events: this.events });
    this.supervisors.set(path, sup);
    sup.onTerminated = (reason, error) => this.ended(path, sup, reason, error);
    for (const c of spec.children) this.addChild(sup, path, c);
    return sup;
  }

  /** Checks one child spec, makes the child and adds it to `sup` with a way to make it again (restartChild). */
  private addChild(sup: Supervisor, path: string, c: ChildSpec): void {
    if (c === null || typeof c !== 'object') throw invalidOption(`supervisor '${path}' child`, c, 'a child spec { name, actor } or { name, supervisor }');
    const shown = describe(c.name);
    const where = `supervisor '${path}' child '${shown}'`;
    checkKeys(c, 'supervisor' in c ? ['name', 'supervisor', 'restart', 'shutdownMs'] : ['name', 'actor', 'restart', 'mailbox', 'shutdownMs'], where);
    assertName(c.name, `${where}.name`);
    const childPath = `${path}/${c.name}`;
    if (c.restart !== undefined && !RESTART_TYPES.includes(c.restart)) {
      throw invalidOption(`supervisor '${path}' child '${describe(c.name)}'.restart`, c.restart, "'permanent', 'transient' or 'temporary'");
    }
    checkShutdownMs(c.shutdownMs, `supervisor '${path}' child '${describe(c.name)}'.shutdownMs`);
    let build: () => SupervisedChild;
    const defaultShutdownMs = 'actor' in c ? 5_000 : Infinity;
    if ('actor' in c) build = () => this.makeCell(c.actor, c.name, childPath, c.mailbox);
    else if ('supervisor' in c) build = () => this.buildSupervisor(c.name, childPath, c.supervisor);
    else throw invalidOption(`supervisor '${path}' child '${shown}'`, c, 'a child spec with actor or supervisor');
    sup.add(build(), c.restart ?? 'permanent', c.shutdownMs ?? defaultShutdownMs, build);
  }

  private startTree(node: SupervisedChild): void {
    if (node instanceof Supervisor) node.children.forEach((c) => this.startTree(c));
    else if (node instanceof ActorCell) node.start();
  }

  /**
   * `node` at `path` ended for good. Only the node that holds the path now is unregistered: a child
   * stopped by terminateChild ends after its successor may have taken its name (registries are
   * keyed by path, and a new subtree under the old name was unregistered by the old one's end).
   */
  private ended(path: string, node: object, reason: string, error?: unknown): void {
    const holder = this.cells.get(path) ?? this.supervisors.get(path) ?? this.roots.get(path);
    if (holder !== undefined && holder !== node) return;
    if (this.cells.get(path) === node) this.cells.delete(path);
    if (this.supervisors.get(path) === node) this.supervisors.delete(path);
    if (this.roots.get(path) === node) this.roots.delete(path);
    this.deathWatch.ended(path, reason, error);
  }
}

function childRunning(path: string, name: string, what: 'restart' | 'delete', state: 'running' | 'stopping'): BatonError {
  const todo = state === 'running' ? 'terminateChild it first' : 'a terminateChild is still stopping it; await that first';
  return new BatonError('ERR_CHILD_RUNNING', `cannot ${what} child '${name}' of supervisor '${path}': ${todo}.`, { supervisor: path, child: name, state });
}

/** Creates an actor system. Every option is optional. */
export function createSystem(options: SystemOptions = {}): ActorSystem {
  return new ActorSystem(options);
}
