import type { Agent, RouteResult } from '../actors/agent.js';
import type { DurableLog } from '../actors/durable-log.js';
import type { Envelope } from '../actors/envelope.js';
import type { Clock, TimerHandle } from '../src/clock.js';
import { BatonError, describe, toErrorInfo, type ErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Logger } from '../src/logging.js';
import { Mailbox } from '../src/mailbox.js';
import type { Random } from '../src/random.js';
import { RingBuffer } from '../src/ring-buffer.js';
import type { Runnable, Scheduler } from '../src/scheduler.js';
import type { AgentPolicy } from './agent-policy.js';
import { calculateDelay } from './backoff.js';
import { chargesProbe, CLOSED, onFreshFailure, onProbeFailure, onSuccess, startProbe, type BreakerState } from './breaker.js';
import type { ChildParent, SupervisedChild } from './child.js';
import { recordRestart, type RestartWindow } from './intensity.js';
import { KeyOrder } from './key-order.js';
import { RunList, TaskRun } from './task-run.js';

/** Shared empty list for rarely used queues: an idle stage allocates none (copy on first write). */
const NONE: Envelope[] = [];
const NO_WINDOW: RestartWindow = Object.freeze([]);

/** What a stage needs from its pipeline. */
export interface StageHost {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  /** The pipeline's journal side, or undefined for a pipeline without a journal. */
  readonly durable: DurableLog | undefined;
  taskId(env: Envelope): string;
  stageNamed(name: string): AgentSupervisor | undefined;
  /** The task left the pipeline's last stage (or a route returned null). */
  complete(env: Envelope, output: unknown, stage: AgentSupervisor, attempts: number): void;
  /** The task is quarantined. */
  deadLetter(env: Envelope, stage: AgentSupervisor, code: string, error: ErrorInfo, attempts: number): void;
  /** The stage ended with the task unfinished: dead-lettered without a journal, left pending in one. */
  abandon(env: Envelope, stage: AgentSupervisor, code: string, error: ErrorInfo): void;
}

export interface StageStats {
  readonly name: string;
  /** Tasks that entered this stage's inbox. */
  readonly received: number;
  /** Handler runs that succeeded. */
  readonly completed: number;
  /** Handler runs that threw, rejected or timed out. */
  readonly failed: number;
  readonly retried: number;
  readonly restarts: number;
  readonly deadLettered: number;
  /** Tasks waiting here: the inbox, retries waiting out their backoff, tasks held for their key. */
  readonly inbox: number;
  /** Of those, the ones in the inbox proper: never more than `capacity` (senders wait, or the overflow policy applies). */
  readonly queued: number;
  /** The inbox's bound (mailbox.capacity). */
  readonly capacity: number;
  readonly inFlight: number;
  readonly breaker: BreakerState['status'];
  readonly status: 'starting' | 'running' | 'suspended' | 'terminated';
}

type Status = StageStats['status'];

/**
 * The local supervisor of one agent. It owns the agent's inbox (a restart never loses queued or
 * in-flight tasks), runs the handler, retries failed tasks with backoff, restarts the worker with
 * fresh state, quarantines poison tasks, holds the inbox behind a breaker during an outage, and
 * hands results on. Decisions are the pure functions of backoff.ts, intensity.ts and breaker.ts;
 * this class only keeps their state and acts on them.
 */
export class AgentSupervisor implements Runnable, SupervisedChild {
  scheduled = false;
  parent: ChildParent | null = null;
  /** The stage a task goes to after this one, unless the agent routes. */
  next: AgentSupervisor | null = null;
  readonly path: string;
  readonly name: string;
  readonly inbox: Mailbox<Envelope>;

  /** Due retries and tasks returned uncharged: they run before the inbox. */
  private readonly ready = new RingBuffer<Envelope>(4);
  /** Retries waiting out their backoff, sorted by dueAt. */
  private delayed: Envelope[] = NONE;
  /** Async runs in start order, which is deadline order (one timeoutMs per stage). */
  private readonly running = new RunList();
  // (The queues below start at 4 slots and grow: an idle agent costs about 1 KB.)
  /** Outputs waiting for room downstream (back-pressure), in completion order. */
  private out: { readonly envs: RingBuffer<Envelope>; readonly to: RingBuffer<AgentSupervisor> } | undefined = undefined;
  private outCount = 0;
  private readonly keys: KeyOrder | undefined;
  private status: Status = 'starting';
  private inFlight = 0;
  private state: unknown = undefined;
  private breaker: BreakerState = CLOSED;
  /** Set by any failure; a success then clears the breaker, streak and restart window (one flag on the hot path). */
  private troubled = false;
  private runNow = 0;
  /** Fresh tasks charged since the last success: if the breaker opens, they were outage victims. */
  private streak: Envelope[] = NONE;
  private window: RestartWindow = NO_WINDOW;
  private initFailures = 0;
  private initGen = 0;
  private timer: TimerHandle | undefined = undefined;
  private timerAt = Infinity;
  private initTimer: TimerHandle | undefined = undefined;
  private wakeFn: (() => void) | undefined = undefined;
  private timerFn: (() => void) | undefined = undefined;
  private get wake(): () => void {
    return (this.wakeFn ??= () => this.host.scheduler.schedule(this));
  }
  private get onTimer(): () => void {
    return (this.timerFn ??= () => this.timerFired());
  }
  // Counters are plain fields: the hot path bumps `received` and `completed` once per task.
  private received = 0;
  private completed = 0;
  private failures = 0;
  private retried = 0;
  private restarts = 0;
  private deadLettered = 0;
  private readonly handle: Agent['handle'];
  /** The handler takes no ctx and there is no route: sync runs need no TaskRun. */
  private readonly bare: boolean;
  private readonly durable: DurableLog | undefined;
  /** Durable stages batch their start records; once a handler returned a promise, batches shrink to free slots. */
  private sawAsync = false;
  /** Durable stages: the suspect running alone; nothing else starts here until it settles. */
  private isolatedRun: TaskRun | undefined = undefined;
  private readonly route: Agent['route'];

  constructor(
    private readonly host: StageHost,
    readonly def: Agent,
    readonly policy: AgentPolicy,
    pipelinePath: string,
    log: Logger,
  ) {
    this.name = def.name;
    this.path = `${pipelinePath}/${def.name}`;
    this.parentLog = log;
    this.inbox = new Mailbox<Envelope>(policy.mailbox);
    this.keys = policy.orderByKey ? new KeyOrder() : undefined;
    this.handle = def.handle;
    this.route = def.route;
    this.bare = def.handle.length < 2 && def.route === undefined;
    this.durable = host.durable;
  }

  get terminated(): boolean {
    return this.status === 'terminated';
  }

  private parentLog: Logger;
  private childLog: Logger | undefined = undefined;

  /** The stage's logger, made on first use (an idle agent should not pay for one). */
  get log(): Logger {
    return (this.childLog ??= this.parentLog.child({ stage: this.path }));
  }

  taskId(env: Envelope): string {
    return this.host.taskId(env);
  }

  /** Starts the worker (runs `init`). */
  start(): void {
    this.host.events.emit({ type: 'started', path: this.path, at: this.host.clock.now() });
    this.runInit();
  }

  /** Takes a task in. The caller checked `inbox.hasRoom()` (senders) or is returning work. */
  enqueue(env: Envelope): void {
    this.inbox.push(env);
    this.received++;
    if (this.status === 'running' && !this.scheduled) this.host.scheduler.schedule(this);
  }

  stats(): StageStats {
    return {
      name: this.name,
      received: this.received,
      completed: this.completed,
      failed: this.failures,
      retried: this.retried,
      restarts: this.restarts,
      deadLettered: this.deadLettered,
      inbox: this.inbox.length + this.ready.length + this.delayed.length + (this.keys?.parked ?? 0),
      queued: this.inbox.length,
      capacity: this.inbox.capacity,
      inFlight: this.inFlight,
      breaker: this.breaker.status,
      status: this.status,
    };
  }

  /** Tasks this stage holds in any form (for shutdown and termination accounting). */
  holds(): number {
    return this.stats().inbox + this.inFlight + this.outCount;
  }

  // ---- the run loop -------------------------------------------------------------------------

  run(budget: number): number {
    if (this.status !== 'running') return 0;
    if (this.outCount > 0 && !this.flushOutbox()) return 0;
    // At most one clock read per batch, and only if a run goes async: deadlines are as coarse as a batch.
    this.runNow = -1;
    if (this.durable !== undefined) return this.runDurable(budget);
    if (this.bare && this.keys === undefined && !this.troubled) return this.runBare(budget);
    const concurrency = this.policy.concurrency;
    const ready = this.ready;
    const inbox = this.inbox;
    let n = 0;
    while (n < budget && this.inFlight < concurrency) {
      let env: Envelope | undefined;
      let probe = false;
      if (this.breaker.status !== 'closed') {
        if (this.breaker.status !== 'open' || this.host.clock.now() < this.breaker.probeAt) break;
        env = this.take(true);
        probe = env !== undefined;
        if (probe) this.breaker = startProbe(this.breaker);
      } else if (this.keys === undefined) {
        env = ready.length > 0 ? ready.shift() : inbox.shift(); // take(false), inlined: the hot path
      } else {
        env = this.take(false);
      }
      if (env === undefined) break;
      n++;
      this.startRun(env, probe);
      if (this.outCount > 0 || this.status !== 'running') break;
    }
    return n;
  }

  /**
   * The common case, specialised: a one-parameter handler, no route, no key order, no journal and no
   * trouble (so the breaker is closed). Same steps as startRun + succeeded without their branches;
   * the first failure leaves this lane (troubled) until a success clears it.
   */
  private runBare(budget: number): number {
    const handle = this.handle as (input: unknown) => unknown;
    const concurrency = this.policy.concurrency;
    const ready = this.ready;
    const inbox = this.inbox;
    let n = 0;
    while (n < budget && this.inFlight < concurrency) {
      const env = ready.length > 0 ? ready.shift() : inbox.shift();
      if (env === undefined) break;
      n++;
      let out: unknown;
      try {
        out = handle(env.payload);
      } catch (err) {
        const run = new TaskRun(this, env, this.state, false);
        run.done = true;
        this.failed(run, err);
        break;
      }
      if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
        this.inFlight++;
        this.awaitRun(new TaskRun(this, env, this.state, false), out as PromiseLike<unknown>);
        continue;
      }
      this.completed++;
      const attempts = env.attempts + 1;
      env.attempts = 0;
      env.payload = out;
      this.handOn(env, out, attempts);
      if (this.outCount > 0 || this.status !== 'running' || this.troubled) break;
    }
    return n;
  }

  hasWork(): boolean {
    if (this.status !== 'running' || this.outCount > 0 || this.inFlight >= this.policy.concurrency) return false;
    if (this.isolatedRun !== undefined || (this.inFlight > 0 && this.ready.peek()?.suspect === true)) return false;
    const waiting = this.ready.length > 0 || this.inbox.length > 0 || (this.durable?.hasBacklog(this.name) ?? false);
    if (this.breaker.status !== 'closed') return waiting && this.breaker.status === 'open' && this.host.clock.now() >= this.breaker.probeAt;
    return waiting;
  }

  /**
   * The durable run loop: take a batch, record that its runs start (one commit, together with
   * everything else written this turn), then run it. A task that kills the process mid-run is
   * therefore charged on recovery, and after maxAttempts crashes it is dead-lettered instead of
   * crash-looping. Tasks of the batch that cannot start now (an async handler filled the slots,
   * the breaker opened) go back to the front, in order.
   */
  private runDurable(budget: number): number {
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
      while (batch.length < max) {
        const env = this.take(false);
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
    durable.flush();
    batch[0]!.suspect = false;
    let n = 0;
    for (; n < batch.length; n++) {
      if (this.status !== 'running' || this.inFlight >= concurrency || this.outCount > 0) break;
      if (!probe && this.breaker.status !== 'closed') break;
      const run = this.startRun(batch[n]!, probe);
      if (isolated && run !== undefined && !run.done) this.isolatedRun = run;
    }
    for (let i = batch.length - 1; i >= n; i--) this.ready.unshift(batch[i]!);
    return n;
  }

  /** Pages the stage's backlog in from the journal while its inbox is at most half full. */
  private refill(durable: DurableLog): void {
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

  /**
   * The next task to run: due retries and returned tasks first, then the inbox. A probe prefers fresh
   * tasks, the inbox first: a failed probe waits at the end of `ready` (not in the inbox, which
   * would break its bound), so probes rotate through the waiting tasks instead of retrying one.
   */
  private take(preferFresh: boolean): Envelope | undefined {
    for (;;) {
      let env: Envelope | undefined;
      if (this.keys !== undefined && this.durable?.hasBacklog(this.name)) {
        // Per-key order across a restart: tasks recovered from the journal were accepted before
        // anything arriving now, so a fresh arrival waits until the whole backlog has been paged in.
        env = preferFresh ? (this.ready.removeFirst((e) => e.attempts === 0) ?? this.ready.shift()) : this.ready.shift();
      } else if (preferFresh) env = this.inbox.shift() ?? this.ready.removeFirst((e) => e.attempts === 0) ?? this.ready.shift();
      else env = this.ready.shift() ?? this.inbox.shift();
      if (env === undefined || this.keys === undefined || this.keys.claim(env)) return env;
      // Parked behind an earlier task with its key; KeyOrder hands it back to `ready` in turn.
    }
  }

  /**
   * Runs the handler on one task. A handler declared with one parameter (`(input) => ...`, and no
   * route) never sees a ctx, so none is made unless the run fails or returns a promise: the
   * synchronous hot path then allocates nothing per stage. (Express decides by arity too.)
   */
  private startRun(env: Envelope, probe: boolean): TaskRun | undefined {
    this.inFlight++;
    let run: TaskRun | undefined;
    let out: unknown;
    try {
      if (this.bare) out = (this.handle as (input: unknown) => unknown)(env.payload);
      else out = this.handle(env.payload, (run = new TaskRun(this, env, this.state, probe)));
    } catch (err) {
      this.inFlight--;
      run ??= new TaskRun(this, env, this.state, probe);
      run.done = true;
      this.failed(run, err);
      return run;
    }
    if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
      run ??= new TaskRun(this, env, this.state, probe);
      this.awaitRun(run, out as PromiseLike<unknown>);
      return run;
    }
    this.inFlight--;
    if (run !== undefined) run.done = true;
    this.succeeded(env, run, probe, out);
    return run;
  }

  /** A run returned a promise: give it a deadline and a place in the run list, and wait for it. */
  private awaitRun(run: TaskRun, promise: PromiseLike<unknown>): void {
    this.sawAsync = true;
    // One deadline per run, one timer per stage: the timer is re-armed only when this deadline is the earliest.
    if (this.runNow < 0) this.runNow = this.host.clock.now();
    run.deadline = this.policy.timeoutMs === Infinity ? Infinity : this.runNow + this.policy.timeoutMs;
    this.running.add(run);
    if (run.deadline < this.timerAt) this.armTimer();
    void this.await(run, promise);
  }

  /** One async frame per run instead of two closures for then(): measured faster on the async hot path. */
  private async await(run: TaskRun, promise: PromiseLike<unknown>): Promise<void> {
    let value: unknown;
    try {
      value = await promise;
    } catch (err) {
      this.settled(run, false, err);
      return;
    }
    this.settled(run, true, value);
  }

  private settled(run: TaskRun, ok: boolean, value: unknown): void {
    if (run.done) return; // timed out or aborted: the late result is discarded
    run.done = true;
    if (this.isolatedRun === run) this.isolatedRun = undefined;
    this.running.delete(run);
    this.inFlight--;
    if (ok) this.succeeded(run.env, run, run.probe, value);
    else this.failed(run, value);
    if (!this.scheduled && this.status === 'running') this.host.scheduler.schedule(this);
  }

  // ---- success and handoff ------------------------------------------------------------------

  private succeeded(env: Envelope, run: TaskRun | undefined, probe: boolean, output: unknown): void {
    if (this.durable !== undefined) {
      try {
        env.bytes = this.durable.encode(output, `the output of stage '${this.path}' for task ${this.taskId(env)}`);
      } catch (err) {
        // An output the journal cannot hold is this stage's failure (ERR_INVALID_INPUT from the codec).
        this.failed(run ?? new TaskRun(this, env, this.state, probe), err, err instanceof BatonError ? err.code : 'ERR_TASK_FAILED');
        return;
      }
    }
    let dest: RouteResult = undefined;
    if (this.route !== undefined) {
      try {
        dest = this.route(output, run!);
        if (dest !== null && dest !== undefined && typeof dest !== 'string' && !isNameList(dest)) {
          throw new BatonError(
            'ERR_INVALID_OPTION',
            `the route of stage '${this.path}' returned ${describe(dest)} for task ${this.taskId(env)}; return a stage name, an array of stage names, or null to complete the task.`,
            { stage: this.path },
          );
        }
      } catch (err) {
        // A throwing router is the stage's code failing on this task: a task failure like any other.
        this.failed(run!, err);
        return;
      }
    }
    this.completed++;
    const attempts = env.attempts + 1;
    // While the breaker is open only its probe speaks for the agent: a run that started before the
    // outage and ends well says nothing about now (closing on it re-ran held tasks into the outage).
    if (this.troubled && (probe || this.breaker.status === 'closed')) this.recovered();
    env.attempts = 0;
    env.payload = output;
    if (this.keys !== undefined) this.keys.release(env, this.ready);
    if (this.route === undefined) this.handOn(env, output, attempts);
    else if (dest === null || dest === undefined) this.host.complete(env, output, this, attempts);
    else if (typeof dest === 'string') this.routeTo(env, dest);
    else this.fanOut(env, dest, output);
  }

  /** To the next stage in the list, or complete after the last. */
  private handOn(env: Envelope, output: unknown, attempts: number): void {
    const next = this.next;
    if (next === null) this.host.complete(env, output, this, attempts);
    else if (this.durable === undefined && this.outCount === 0 && next.inbox.length < next.inbox.capacity) next.enqueue(env);
    else this.handoff(env, next);
  }

  private routeTo(env: Envelope, name: string): void {
    const to = this.host.stageNamed(name);
    if (to === undefined) this.unknownRoute(env, name);
    else this.handoff(env, to);
  }

  private fanOut(env: Envelope, names: readonly string[], output: unknown): void {
    if (names.length === 0) return this.host.complete(env, output, this, 1);
    if (names.length === 1) return this.routeTo(env, names[0]!);
    if (this.durable !== undefined) {
      const err = new BatonError('ERR_INVALID_OPTION', `stage '${this.path}' routed task ${this.taskId(env)} to ${names.length} stages, but fan-out is not supported in pipelines with a journal yet; route to one stage.`, { stage: this.path });
      this.deadLettered++;
      this.host.deadLetter(env, this, err.code, toErrorInfo(err), 1);
      return;
    }
    env.fan ??= { open: 1, outputs: [], dead: undefined };
    env.fan.open += names.length - 1;
    names.forEach((name, i) => this.routeTo(i === 0 ? env : env.branch(output), name));
  }

  private unknownRoute(env: Envelope, name: string): void {
    const err = new BatonError(
      'ERR_UNKNOWN_ADDRESS',
      `stage '${this.path}' routed task ${this.taskId(env)} to '${name}', which is not a stage of this pipeline; return one of its stage names, an array of them, or null to complete the task.`,
      { stage: this.path, address: name },
    );
    this.deadLettered++;
    this.host.deadLetter(env, this, err.code, toErrorInfo(err), 1);
  }

  private handoff(env: Envelope, to: AgentSupervisor): void {
    if (this.durable !== undefined) {
      this.durable.push({ op: 'move', id: this.taskId(env), stage: to.name, payload: env.bytes! });
      env.bytes = undefined;
    }
    if (this.outCount === 0 && to.inbox.hasRoom()) {
      to.enqueue(env);
      return;
    }
    if (this.outCount === 0) to.inbox.onRoom(this.wake);
    this.out ??= { envs: new RingBuffer<Envelope>(4), to: new RingBuffer<AgentSupervisor>(4) };
    this.out.envs.push(env);
    this.out.to.push(to);
    this.outCount++;
  }

  /** Hands on outputs that waited for room; false while the next inbox is still full. */
  private flushOutbox(): boolean {
    const out = this.out!;
    while (this.outCount > 0) {
      const to = out.to.peek()!;
      if (!to.inbox.hasRoom() && !to.terminated) {
        to.inbox.onRoom(this.wake);
        return false;
      }
      out.to.shift();
      this.outCount--;
      to.enqueue(out.envs.shift()!);
    }
    return true;
  }

  // ---- failure ------------------------------------------------------------------------------

  /** The first success after trouble: close the breaker, forget the streak and the restart window. */
  private recovered(): void {
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
  private failed(run: TaskRun, thrown: unknown, code = 'ERR_TASK_FAILED'): void {
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
        if (this.breaker.status === 'probing') this.breaker = { status: 'open', probes: this.breaker.probes, openedAt: this.breaker.openedAt, probeAt: now };
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

  private charge(env: Envelope, now: number, code: string): void {
    env.attempts++;
    if (env.attempts >= this.policy.maxAttempts) {
      this.deadLettered++;
      this.keys?.release(env, this.ready);
      this.host.deadLetter(env, this, code, env.errors![env.errors!.length - 1]!.error, env.attempts);
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
  private refundStreak(): void {
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

  private breakerOpened(now: number): void {
    if (this.breaker.status !== 'open') return;
    this.host.events.emit({ type: 'breaker-opened', path: this.path, at: now, probeInMs: this.breaker.probeAt - now, probes: this.breaker.probes });
    if (this.breaker.probeAt < this.timerAt) this.armTimer();
  }

  private closeBreaker(): void {
    const was = this.breaker;
    this.breaker = onSuccess(was);
    if (was.status !== 'closed') {
      const now = this.host.clock.now();
      this.host.events.emit({ type: 'breaker-closed', path: this.path, at: now, heldMs: now - was.openedAt });
    }
  }

  // ---- the worker ---------------------------------------------------------------------------

  private restartWorker(): void {
    this.restarts++;
    this.host.events.emit({ type: 'restarted', path: this.path, at: this.host.clock.now(), restarts: this.restarts });
    if (this.def.init !== undefined && !this.policy.keepState && this.status === 'running') this.runInit();
  }

  private runInit(): void {
    const init = this.def.init;
    if (init === undefined) return this.becomeRunning();
    this.status = 'starting';
    const gen = ++this.initGen;
    let result: unknown;
    try {
      result = init();
    } catch (err) {
      return this.initFailed(err);
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(
        (state) => {
          if (gen !== this.initGen || this.status !== 'starting') return;
          this.state = state;
          this.becomeRunning();
        },
        (err) => {
          if (gen === this.initGen && this.status === 'starting') this.initFailed(err);
        },
      );
      return;
    }
    this.state = result;
    this.becomeRunning();
  }

  private becomeRunning(): void {
    this.status = 'running';
    this.armTimer();
    if (this.hasWork() || this.outCount > 0) this.host.scheduler.schedule(this);
  }

  /** `init` threw: an agent that cannot start is the case restart intensity is for. */
  private initFailed(thrown: unknown): void {
    this.troubled = true;
    const now = this.host.clock.now();
    this.host.events.emit({ type: 'crashed', path: this.path, at: now, error: toErrorInfo(thrown) });
    const decision = recordRestart(this.policy.intensity, this.window, now);
    this.window = decision.window;
    if (!decision.restart) return this.escalate(thrown);
    this.initFailures++;
    this.restarts++;
    const delay = calculateDelay(this.policy.restartBackoff, this.initFailures, this.host.random);
    this.initTimer = this.host.clock.setTimer(delay, () => {
      this.initTimer = undefined;
      if (this.status === 'starting') this.runInit();
    });
  }

  private escalate(thrown: unknown): void {
    const { maxRestarts, withinMs } = this.policy.intensity;
    const reason = `more than ${maxRestarts} restarts within ${withinMs} ms with no success between; last error: ${toErrorInfo(thrown).message}`;
    this.host.events.emit({ type: 'escalated', path: this.path, at: this.host.clock.now(), reason });
    this.suspend();
    const error = new BatonError('ERR_ESCALATED', `stage '${this.path}' escalated: ${reason}`, { stage: this.path }, thrown);
    if (this.parent !== null) this.parent.childExited(this, 'crash', error);
    else this.terminate('escalated', error);
  }

  // ---- supervision (SupervisedChild) --------------------------------------------------------

  suspend(): void {
    if (this.status === 'terminated') return;
    this.status = 'suspended';
    this.isolatedRun = undefined;
    this.initGen++;
    this.initTimer?.cancel();
    this.initTimer = undefined;
    this.cancelTimer();
    // In-flight runs go back to the front of the queue, uncharged, in their original order.
    const runs = [...this.running].reverse();
    this.running.clear();
    for (const run of runs) {
      run.done = true;
      run.abort('ERR_ABORTED', `stage '${this.path}' is restarting`);
      this.ready.unshift(run.env);
    }
    this.inFlight = 0;
  }

  restart(): void {
    if (this.status === 'terminated') return;
    this.window = NO_WINDOW;
    this.initFailures = 0;
    this.breaker = CLOSED;
    this.restarts++;
    this.host.events.emit({ type: 'restarted', path: this.path, at: this.host.clock.now(), restarts: this.restarts });
    this.runInit();
  }

  terminate(reason: string, error?: unknown): void {
    if (this.status === 'terminated') return;
    this.suspend();
    this.status = 'terminated';
    const info = toErrorInfo(error ?? new BatonError('ERR_STOPPED', `stage '${this.path}' stopped: ${reason}`, { stage: this.path }));
    const code = error instanceof BatonError ? error.code : 'ERR_STOPPED';
    const left = [...(this.out?.envs.clear() ?? []), ...this.ready.clear(), ...this.delayed.splice(0), ...this.inbox.clear(), ...(this.keys?.clear() ?? [])];
    this.out?.to.clear();
    this.outCount = 0;
    for (const env of left) this.host.abandon(env, this, code, info);
    this.inbox.wakeAll();
    this.host.events.emit({ type: 'stopped', path: this.path, at: this.host.clock.now(), reason });
  }

  // ---- the one timer ------------------------------------------------------------------------

  private armTimer(): void {
    let at = this.delayed.length > 0 ? this.delayed[0]!.dueAt : Infinity;
    const oldest = this.running.head; // the oldest run has the earliest deadline
    if (oldest !== undefined && oldest.deadline < at) at = oldest.deadline;
    // A probe already due needs no timer: the run loop takes it (hasWork) as soon as a task waits.
    // Arming one for a past instant would fire at once, find nothing to probe, and re-arm forever.
    if (this.breaker.status === 'open' && this.breaker.probeAt < at && this.breaker.probeAt > this.host.clock.now()) at = this.breaker.probeAt;
    if (at === this.timerAt) return;
    this.cancelTimer();
    if (at === Infinity || this.status === 'terminated') return;
    this.timerAt = at;
    this.timer = this.host.clock.setTimer(at - this.host.clock.now(), this.onTimer);
  }

  /** Read through a method: TypeScript would narrow `status` across calls that change it. */
  private halted(): boolean {
    return this.status === 'suspended' || this.status === 'terminated';
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private timerFired(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.status === 'terminated') return;
    const now = this.host.clock.now();
    while (this.delayed.length > 0 && this.delayed[0]!.dueAt <= now) this.ready.push(this.delayed.shift()!);
    for (const run of this.running) {
      // A timeout can escalate the stage, which aborts and unlinks every run: stop then.
      if (run.deadline > now || this.halted()) break;
      if (run.done) continue;
      this.running.delete(run);
      run.done = true;
      if (this.isolatedRun === run) this.isolatedRun = undefined;
      this.inFlight--;
      const err = run.abort('ERR_TIMEOUT', `stage '${this.path}' timed out task ${run.taskId} after ${this.policy.timeoutMs} ms (timeoutMs); the handler's late result will be discarded.`);
      this.failed(run, err, 'ERR_TIMEOUT');
    }
    this.armTimer();
    if (this.status === 'running') this.host.scheduler.schedule(this);
  }
}

function isNameList(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((name) => typeof name === 'string');
}
