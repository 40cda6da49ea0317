import type { Agent, RouteResult } from '../actors/agent.js';
import type { Envelope } from '../actors/envelope.js';
import { arrivals, runChannel, traceEnd, traceSettled, type RunTrace } from '../src/diagnostics.js';
import { BatonError, describe, toErrorInfo, type ErrorInfo } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import type { Mailbox } from '../src/mailbox.js';
import type { Runnable } from '../src/scheduler.js';
import type { AgentPolicy } from '../policies/agent-policy.js';
import type { ChildParent, SupervisedChild } from './child.js';
import { StageBacklog, type BacklogOwner } from './stage-backlog.js';
import { StageFailures, type FailureAction } from './stage-failures.js';
import { StageHandoff } from './stage-handoff.js';
import { StageCounts, type StageHost, type StageInbox, type StageStats, type Status } from './stage-host.js';
import { StageQueues } from './stage-queues.js';
import { StageRuns } from './stage-runs.js';
import type { StageStore } from './stage-store.js';
import type { StageBudget } from './stage-budget.js';
import { gateStats, StageGate } from './stage-gate.js';
import type { Cost } from '../policies/budget.js';
import { StageTimer } from './stage-timer.js';
import { StageWorker, type WorkerOwner } from './stage-worker.js';
import { TaskRun, type RunOwner } from './task-run.js';
import { decidedCode } from './decided.js';

export type { StageHost, StageStats } from './stage-host.js';

/** Compared with a promise's then(), never called unbound. */
const NATIVE_THEN = Promise.prototype.then;

/**
 * The local supervisor of one agent (a pipeline's "stage"). It owns the agent's inbox (a restart
 * never loses queued or in-flight tasks), runs the handler, retries failed tasks with backoff,
 * restarts the worker with fresh state, quarantines poison tasks, holds the inbox behind a breaker
 * during an outage, and hands results on. A small owner of parts, each in the file named after it
 * with the fields it owns:
 *   queues   (stage-queues.ts)   inbox, ready, delayed retries, tasks parked behind their key
 *   failures (stage-failures.ts) charging, the breaker, retries and dead letters, restart intensity
 *   worker   (stage-worker.ts)   the agent's state and its init
 *   runs     (stage-runs.ts)     runs in flight, deadlines, pooled run records
 *   timer    (stage-timer.ts)    the stage's one timer
 *   handoff  (stage-handoff.ts)  next stage, routes, fan-out, the outbox
 *   store    (stage-store.ts)    what is recorded: nothing, or the pipeline's journal
 *   backlog  (stage-backlog.ts)  the journaled run loop, paging and adopting recovered tasks
 *   gate     (stage-gate.ts)     the rate limit (stage-throttle.ts) and the budget (stage-budget.ts), made when needed
 * Here: the run loops (the bare lane, the general one), a run's success and failure, and the
 * stage's life in the supervision tree (start, suspend, restart, terminate, escalate).
 */
export class AgentSupervisor implements Runnable, SupervisedChild, StageInbox, RunOwner, WorkerOwner, BacklogOwner {
  scheduled = false;
  parent: ChildParent | null = null;
  readonly path: string;
  readonly name: string;
  readonly counts = new StageCounts();
  readonly queues: StageQueues;
  /** The queues' inbox, as a field: upstream stages check it for room once per handoff. */
  readonly inbox: Mailbox<Envelope>;
  readonly failures: StageFailures;
  readonly worker: StageWorker | undefined;
  readonly runs: StageRuns;
  readonly timer: StageTimer;
  readonly handoff: StageHandoff;
  readonly store: StageStore;
  private readonly backlog: StageBacklog | undefined;
  /** Made for an agent with a rateLimit or a budget, or at its first refusal or ctx.spend: undefined keeps the hot path as it was. */
  private gate: StageGate | undefined;
  private status: Status = 'starting';
  private readonly handle: Agent['handle'];
  private readonly route: Agent['route'];
  /** The handler takes no ctx and there is no route: sync runs need no TaskRun. */
  private readonly bare: boolean;
  /** Schedules the stage (a downstream inbox has room, a page or start record arrived); made on first use. */
  get wake(): () => void {
    return (this.wakeFn ??= () => this.host.scheduler.schedule(this));
  }
  private wakeFn: (() => void) | undefined = undefined;
  private readonly parentLog: Logger;
  private childLog: Logger | undefined = undefined;

  constructor(
    private readonly host: StageHost,
    readonly def: Agent,
    readonly policy: AgentPolicy,
    pipelinePath: string,
    log: Logger,
    /** The pipeline's budget (spawnPipeline({ budget })): this stage's spends count against it, and it holds this stage when spent. */
    sharedBudget?: StageBudget,
  ) {
    this.name = def.name;
    this.path = `${pipelinePath}/${def.name}`;
    this.parentLog = log;
    this.handle = def.handle;
    this.route = def.route;
    this.bare = def.handle.length < 2 && def.route === undefined;
    this.store = host.storeFor(def.name);
    this.queues = new StageQueues(policy.mailbox, policy.orderByKey, policy.perKeyConcurrency);
    this.inbox = this.queues.inbox;
    this.runs = new StageRuns(this);
    this.timer = new StageTimer(host.clock, this);
    this.failures = new StageFailures(this.path, this.name, policy, host, this.queues, this.store, this.counts, this);
    // An agent without init has no worker state to keep: no StageWorker (an idle agent costs less).
    this.worker = def.init === undefined ? undefined : new StageWorker(def.init, policy, host.clock, host.random, this);
    this.handoff = new StageHandoff(this.path, this.name, host, this.store, this.counts, this);
    // Only a journaled stage has a backlog (an idle in-memory agent should not pay for one).
    this.backlog = this.store.journaled ? new StageBacklog(this.name, policy, host, this.queues, this.runs, this.failures, this.store, this.counts, this) : undefined;
    this.gate = StageGate.of(this.path, policy, host, host.clock.now(), sharedBudget, () => this.store.keeper(`budget:${def.name}`));
  }

  private openGate(): StageGate {
    return (this.gate ??= new StageGate(this.path, this.host, undefined, undefined));
  }

  /** A run reports its cost (ctx.spend): counted against the budget, shown in stats. */
  spend(cost: Cost, key?: string): void {
    this.openGate().spend(cost, key, this.host.clock.now());
  }

  /** A server refused a run for rate: the throttle (made now if this agent had none) holds the inbox. */
  refused(retryAfterMs: number | undefined, now: number): void {
    this.openGate().refused(retryAfterMs, now);
    this.armTimer();
  }

  throttleStarted(n: number): void {
    this.gate?.started(n, this.host.clock.now());
  }

  /**
   * Runs the throttle lets start now (Infinity without one). When it is 0, the stage's timer is
   * armed for when a run may start: a full bucket or a hold is waited out on the timer, not polled.
   */
  allowance(): number {
    return this.gate === undefined ? Infinity : this.gate.allowance(this.host.clock.now(), this);
  }

  get terminated(): boolean {
    return this.status === 'terminated';
  }
  get running(): boolean {
    return this.status === 'running';
  }
  /** Read through a getter: TypeScript would narrow `status` across calls that change it. */
  get halted(): boolean {
    return this.status === 'suspended' || this.status === 'terminated';
  }
  get blocked(): boolean {
    return this.handoff.outCount > 0;
  }
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
    this.failures.restoreHold();
    this.gate?.restore(this.host.clock.now());
    this.startWorker();
  }

  /** Takes a task in. The caller checked `inbox.hasRoom()` (senders) or is returning work. */
  enqueue(env: Envelope): void {
    // Noted only while run-time histograms want it (see arrivals): one number read otherwise.
    if (arrivals.wanted > 0) env.arrivedAt = performance.now();
    this.inbox.push(env);
    this.counts.received++;
    if (this.status === 'running' && !this.scheduled) this.host.scheduler.schedule(this);
  }

  /** A later stage orders by key: recovered tasks go on from here in accepted order (see StageBacklog). */
  keepAcceptedOrder(): void {
    this.backlog?.keepAcceptedOrder();
  }

  /** Takes in a task recovered from the journal or replayed by an operator (see StageBacklog.adopt). */
  adopt(env: Envelope, running: 'no' | 'suspect' | 'isolated'): void {
    this.backlog!.adopt(env, running); // recovered and replayed tasks come only from a journal
  }

  stats(): StageStats {
    const c = this.counts;
    return {
      name: this.name,
      received: c.received,
      completed: c.completed,
      failed: c.failed,
      retried: c.retried,
      restarts: c.restarts,
      deadLettered: c.deadLettered,
      inbox: this.queues.waiting,
      queued: this.queues.inbox.length,
      capacity: this.queues.inbox.capacity,
      inFlight: this.runs.inFlight,
      breaker: this.failures.breaker.status,
      ...gateStats(this.gate, this.host.clock.now()),
      status: this.status,
    };
  }

  /**
   * Cancels one task (or one branch of a fanned-out task) with id `id` if this stage holds it: a
   * waiting one leaves its queue, a running one has its signal aborted and its late result discarded;
   * either is dead-lettered now with ERR_CANCELLED. False if it is not here.
   */
  cancel(id: string, error: ErrorInfo): boolean {
    if (this.status === 'terminated') return false;
    const match = (env: Envelope): boolean => this.host.taskId(env) === id;
    let env = this.queues.remove(match) ?? this.handoff.remove(match) ?? this.backlog?.remove(match);
    if (env === undefined) {
      for (const run of this.runs.running) {
        if (run.done || run.taskId !== id) continue;
        this.runs.ended(run);
        if (this.runs.isolated === run) this.endIsolation();
        run.abort('ERR_ABORTED', `task ${id} was cancelled at stage '${this.path}'; the handler's late result will be discarded.`);
        if (run.trace !== undefined) traceSettled(run.takeTrace(), false, error);
        env = run.env;
        break;
      }
    }
    if (env === undefined) return false;
    this.queues.release(env);
    this.counts.deadLettered++;
    this.host.deadLetter(env, this.name, 'ERR_CANCELLED', error, env.attempts);
    if (this.status === 'running' && !this.scheduled) this.host.scheduler.schedule(this);
    return true;
  }

  /** Tasks this stage holds in any form (for shutdown and termination accounting). */
  holds(): number {
    return this.queues.waiting + this.runs.inFlight + this.handoff.outCount;
  }

  // ---- the run loops ------------------------------------------------------------------------

  run(budget: number): number {
    if (this.status !== 'running') return 0;
    if (this.handoff.outCount > 0 && !this.handoff.flush()) return 0;
    // At most one clock read per batch, and only if a run goes async: deadlines are as coarse as a batch.
    this.runs.batchNow = -1;
    if (this.backlog !== undefined) return this.backlog.run(budget);
    const failures = this.failures;
    // While a tool traces runs (the baton:run channel), every run takes the general path, which publishes.
    if (this.bare && this.queues.keys === undefined && this.queues.fair === undefined && !failures.troubled && this.gate === undefined && !runChannel.hasSubscribers) return this.runBare(budget);
    const concurrency = this.policy.concurrency;
    const { ready, inbox, keys, fair } = this.queues;
    const runs = this.runs;
    // Rate limit or a hold after a refusal: at most this many runs start now (see StageThrottle).
    const allowed = this.gate === undefined ? Infinity : this.allowance();
    let n = 0;
    while (n < budget && n < allowed && runs.inFlight < concurrency) {
      let env: Envelope | undefined;
      let probe = false;
      if (failures.breaker.status !== 'closed') {
        if (!failures.probeDue(this.host.clock.now())) break;
        env = this.queues.takeProbe(this.host.random, failures);
        probe = env !== undefined;
        if (probe) failures.startProbe();
      } else if (keys === undefined && fair === undefined && !failures.preferFresh) {
        env = ready.length > 0 ? ready.shift() : inbox.shift(); // take(false), inlined: the hot path
      } else {
        // While fresh failures add up towards the breaker, fresh tasks go first: due retries would
        // fail again in an outage and be charged (a handler slower than the retry backoff let them
        // crowd the fresh tasks out, and healthy tasks were dead-lettered before the breaker opened).
        env = this.queues.take(failures.preferFresh, false);
      }
      if (env === undefined) break;
      n++;
      this.gate?.started(1, this.host.clock.now());
      this.startRun(env, probe);
      if (this.handoff.outCount > 0 || this.status !== 'running') break;
    }
    if (n > 0 && n >= allowed && this.gate !== undefined) this.armTimerIfEarlier(this.gate.throttleNextAt(this.host.clock.now()));
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
    const { ready, inbox } = this.queues;
    const { runs, counts, handoff, failures } = this;
    let n = 0;
    while (n < budget && runs.inFlight < concurrency) {
      const env = ready.length > 0 ? ready.shift() : inbox.shift();
      if (env === undefined) break;
      n++;
      let out: unknown;
      let thenable: boolean;
      try {
        out = handle(env.payload);
        // Inside the try: reading `then` runs user code (a getter, a Proxy trap) that may throw.
        thenable = out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function';
      } catch (err) {
        this.runFailed(env, false, err);
        break;
      }
      if (thenable) {
        runs.inFlight++;
        this.awaitRun(runs.pooled(env), out as PromiseLike<unknown>);
        continue;
      }
      counts.completed++;
      const attempts = env.attempts + 1;
      env.attempts = 0;
      env.excusedIn = -1;
      env.payload = out;
      // handOn, inlined for the common case (no journal on this lane): straight into the next inbox.
      const next = handoff.next;
      if (next !== null && handoff.outCount === 0 && next.inbox.hasRoom()) next.enqueue(env);
      else handoff.handOn(env, out, attempts);
      if (handoff.outCount > 0 || this.status !== 'running' || failures.troubled) break;
    }
    return n;
  }

  hasWork(): boolean {
    const runs = this.runs;
    if (this.status !== 'running' || this.handoff.outCount > 0 || runs.inFlight >= this.policy.concurrency) return false;
    if (runs.isolated !== undefined || this.backlog?.waiting === true || (runs.inFlight > 0 && this.queues.ready.peek()?.suspect === true)) return false;
    const waiting = this.queues.hasReady() || this.store.canPage();
    if (waiting && this.gate !== undefined && this.allowance() === 0) return false;
    if (this.failures.breaker.status !== 'closed') return waiting && this.failures.probeDue(this.host.clock.now());
    return waiting;
  }

  /**
   * Runs the handler on one task. A handler declared with one parameter (`(input) => ...`, and no
   * route) never sees a ctx, so none is made unless the run fails or returns a promise: the
   * synchronous hot path then allocates nothing per stage. (Express decides by arity too.)
   */
  startRun(env: Envelope, probe: boolean): TaskRun | undefined {
    const gate = this.gate;
    if (gate !== undefined) {
      const verdict = gate.admit(env, this.host.clock.now());
      if (verdict === 'dead-letter') return this.overBudget(env);
      if (verdict !== 'run') {
        // Its key spent its window: the task waits it out beside the retries (uncharged, its key's
        // place kept), and the other keys go on.
        this.queues.delay(env, verdict);
        this.armTimerIfEarlier(verdict);
        return undefined;
      }
    }
    const runs = this.runs;
    runs.inFlight++;
    const trace = runChannel.hasSubscribers ? this.traceStart(env) : undefined;
    let run: TaskRun | undefined;
    let out: unknown;
    let thenable: boolean;
    try {
      if (this.bare) out = (this.handle as (input: unknown) => unknown)(env.payload);
      else out = this.handle(env.payload, (run = new TaskRun(this, env, this.worker?.state, probe)));
      // Inside the try: reading `then` runs user code (a getter, a Proxy trap) that may throw.
      thenable = out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function';
    } catch (err) {
      runs.inFlight--;
      run ??= new TaskRun(this, env, this.worker?.state, probe);
      run.done = true;
      if (trace !== undefined) traceEnd(trace, err);
      this.runFailed(env, probe, err);
      return run;
    }
    if (thenable) {
      run ??= new TaskRun(this, env, this.worker?.state, probe);
      if (trace !== undefined) {
        run.trace = trace;
        trace.async = true;
        runChannel.end.publish(trace); // the synchronous part ended; asyncStart/asyncEnd follow when it settles
      }
      this.awaitRun(run, out as PromiseLike<unknown>);
      return run;
    }
    runs.inFlight--;
    if (run !== undefined) run.done = true;
    if (trace !== undefined) {
      trace.result = out;
      runChannel.end.publish(trace);
    }
    this.succeeded(env, run, probe, out);
    return run;
  }

  /** The budget is spent and the agent dead-letters what comes now (onExhausted: 'dead-letter'). */
  private overBudget(env: Envelope): undefined {
    const resetsAt = this.gate!.resetsAt(this.host.clock.now());
    const error: ErrorInfo = { name: 'BatonError', code: 'ERR_BUDGET_EXHAUSTED', message: `stage '${this.path}' is over budget for this window (its own or its pipeline's; spending starts again at ${resetsAt}); task ${this.taskId(env)} was not run.` };
    this.counts.deadLettered++;
    this.queues.release(env);
    this.host.deadLetter(env, this.name, 'ERR_BUDGET_EXHAUSTED', error, env.attempts);
    return undefined;
  }

  /** A traced run begins: its context, published on start. */
  private traceStart(env: Envelope): RunTrace {
    const trace: RunTrace = { path: this.path, taskId: this.taskId(env), attempt: env.attempts + 1 };
    if (env.arrivedAt >= 0) {
      trace.queuedMs = performance.now() - env.arrivedAt;
      env.arrivedAt = -1;
    }
    runChannel.start.publish(trace);
    return trace;
  }

  /** A run returned a promise: give it a deadline and a place in the run list, and wait for it. */
  private awaitRun(run: TaskRun, promise: PromiseLike<unknown>): void {
    const runs = this.runs;
    runs.sawAsync = true;
    // One deadline per run, one timer per stage: the timer is re-armed only when this deadline is the earliest.
    if (runs.batchNow < 0) runs.batchNow = this.host.clock.now();
    run.deadline = this.policy.timeoutMs === Infinity ? Infinity : runs.batchNow + this.policy.timeoutMs;
    runs.running.add(run);
    if (run.deadline < this.timer.at) this.armTimer();
    // Only the native then() is sure to call back at most once (reused records rely on that): a
    // thenable, or a Promise subclass overriding then(), may call back twice; `await` guards them.
    let native: boolean;
    try {
      native = promise.then === NATIVE_THEN;
    } catch {
      native = false; // a `then` getter that throws on its second read: `await` turns that into a rejection
    }
    if (!run.pooled || !native) return void this.await(run, promise);
    // A pooled run keeps its two callbacks, so then() costs no closure: measured ~1.25x the async
    // tasks/s of an async frame per run (which wins only when then() needs two new closures).
    try {
      promise.then((run.onValue ??= (value) => this.bareSettled(run, value)), (run.onError ??= (err) => this.settled(run, false, err)));
    } catch (err) {
      // The native then() throws only if a subclass's species constructor does, before it registers
      // the callbacks (so the record is not in use elsewhere): a rejection, as `await` would make it.
      queueMicrotask(() => this.settled(run, false, err));
    }
  }

  /**
   * A bare-lane run's promise fulfilled: a success on an untroubled stage goes straight on, as in
   * runBare (no route, key order or journal to consult). Anything else takes the general path.
   */
  private bareSettled(run: TaskRun, value: unknown): void {
    if (run.done || this.failures.troubled) return this.settled(run, true, value);
    this.runs.ended(run);
    const env = run.env;
    this.counts.completed++;
    const attempts = env.attempts + 1;
    env.attempts = 0;
    env.excusedIn = -1;
    env.payload = value;
    this.runs.recycle(run);
    this.handoff.handOn(env, value, attempts);
    if (!this.scheduled && this.status === 'running') this.host.scheduler.schedule(this);
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
    this.runs.ended(run);
    if (run.trace !== undefined) traceSettled(run.takeTrace(), ok, value);
    if (this.runs.isolated === run) this.endIsolation();
    if (ok) {
      this.succeeded(run.env, run, run.probe, value);
      // Only a run that settled well here is reused: a failed one may be kept (streak, history).
      if (run.pooled) this.runs.recycle(run);
    } else this.runFailed(run.env, run.probe, value, decidedCode(value)); // a dead worker thread: ERR_WORKER_EXITED, not ERR_TASK_FAILED
    if (!this.scheduled && this.status === 'running') this.host.scheduler.schedule(this);
  }

  // ---- a run's result -----------------------------------------------------------------------

  /** Encode the output for the journal, ask the router, count it, hand the task on. */
  private succeeded(env: Envelope, run: TaskRun | undefined, probe: boolean, output: unknown): void {
    if (this.store.journaled) {
      try {
        this.store.encodeOutput(env, output, `the output of stage '${this.path}' for task ${this.taskId(env)}`);
      } catch (err) {
        // An output the journal cannot hold is this stage's failure (ERR_INVALID_INPUT from the codec).
        return this.runFailed(env, probe, err, err instanceof BatonError ? err.code : 'ERR_TASK_FAILED');
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
        return this.runFailed(env, probe, err);
      }
    }
    this.counts.completed++;
    const attempts = env.attempts + 1;
    this.gate?.ran(this.host.clock.now());
    // While the breaker is open only its probe speaks for the agent: a run that started before the
    // outage and ends well says nothing about now (closing on it re-ran held tasks into the outage).
    this.failures.succeeded(probe);
    env.attempts = 0;
    env.excusedIn = -1;
    env.payload = output;
    this.queues.release(env);
    if (this.route === undefined) this.handoff.handOn(env, output, attempts);
    else this.handoff.routed(env, dest ?? null, output, attempts);
  }

  /** A run failed: the failure rules decide; then the worker restarts, or the stage escalates. */
  private runFailed(env: Envelope, probe: boolean, thrown: unknown, code?: string): void {
    const action: FailureAction = this.failures.failed(env, probe, thrown, code);
    if (action === 'none') return;
    // Not a rate-limit refusal: as far as the throttle is concerned the server took the call.
    this.gate?.ran(this.host.clock.now());
    if (action === 'escalate') this.escalate(thrown);
    else this.restartWorker();
  }

  // ---- the worker ---------------------------------------------------------------------------

  private startWorker(): void {
    this.status = 'starting';
    if (this.worker === undefined) return this.workerReady();
    this.worker.start();
  }

  private restartWorker(): void {
    this.counts.restarts++;
    this.host.events.emit({ type: 'restarted', path: this.path, at: this.host.clock.now(), restarts: this.counts.restarts });
    if (this.worker?.fresh === true && this.status === 'running') this.startWorker();
  }

  workerReady(): void {
    if (this.status !== 'starting') return;
    this.status = 'running';
    this.worker?.started();
    this.armTimer();
    if (this.hasWork() || this.handoff.outCount > 0) this.host.scheduler.schedule(this);
  }

  /** `init` threw: retried after the restart backoff, or, past the restart intensity, escalated. */
  workerFailed(thrown: unknown): void {
    if (this.status !== 'starting') return;
    if (this.failures.initFailed(thrown)) return this.escalate(thrown);
    this.counts.restarts++;
    this.worker!.retryLater(() => {
      if (this.status === 'starting') this.worker!.start();
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
    // An isolated run taken back here did not crash the process: it must not be charged for one.
    if (this.runs.isolated !== undefined) this.endIsolation();
    this.worker?.cancel();
    this.timer.cancel();
    // In-flight runs go back to the front of the queue, uncharged, in their original order, ahead of
    // a batch still waiting for its start record (taken from the queue after they started).
    this.backlog?.takeBack();
    for (const env of this.runs.takeBack(this.path)) this.queues.ready.unshift(env);
  }

  restart(): void {
    if (this.status === 'terminated') return;
    this.failures.reset();
    this.worker?.cancel(true);
    this.counts.restarts++;
    this.host.events.emit({ type: 'restarted', path: this.path, at: this.host.clock.now(), restarts: this.counts.restarts });
    this.startWorker();
  }

  terminate(reason: string, error?: unknown): void {
    if (this.status === 'terminated') return;
    this.suspend();
    this.status = 'terminated';
    const info = toErrorInfo(error ?? new BatonError('ERR_STOPPED', `stage '${this.path}' stopped: ${reason}`, { stage: this.path }));
    const code = error instanceof BatonError ? error.code : 'ERR_STOPPED';
    const left = [...this.handoff.clear(), ...this.queues.clear()];
    for (const env of left) this.host.abandon(env, this.name, code, info);
    this.host.events.emit({ type: 'stopped', path: this.path, at: this.host.clock.now(), reason });
  }

  // ---- the one timer ------------------------------------------------------------------------

  /** Arms the timer for the earliest of the oldest run's deadline, the first due retry and the breaker's probe. */
  private armTimer(): void {
    if (this.status === 'terminated') return this.timer.cancel();
    let at = this.queues.nextDue();
    const oldest = this.runs.running.head; // the oldest run has the earliest deadline
    if (oldest !== undefined && oldest.deadline < at) at = oldest.deadline;
    const now = this.host.clock.now();
    const probeAt = this.failures.probeAt(now);
    if (probeAt < at) at = probeAt;
    // Tasks wait here, or on disk to be paged in (a recovered backlog): a hold must wake the stage for either.
    const waiting = this.queues.hasReady() || this.store.canPage();
    if (this.gate !== undefined && waiting) {
      const next = this.gate.nextOpen(now);
      if (next < at) at = next;
    }
    this.timer.arm(at);
  }

  /** A retry or probe due at `at` may now be the earliest thing the timer waits for (StageFailures asks). */
  armTimerIfEarlier(at: number): void {
    if (at < this.timer.at) this.armTimer();
  }

  /** A suspect's isolated run ended (settled or timed out): the journal must stop naming it as running alone. */
  private endIsolation(): void {
    this.runs.isolated = undefined;
    this.store.endIsolation();
  }

  /** The timer fired: due retries move to ready, runs past their deadline time out (StageTimer calls). */
  timerFired(): void {
    if (this.status === 'terminated') return;
    const now = this.host.clock.now();
    this.queues.releaseDue(now);
    let waited: TaskRun[] | undefined;
    for (const run of this.runs.running) {
      // A timeout can escalate the stage, which aborts and unlinks every run: stop then.
      if (run.deadline > now || this.halted) break;
      if (run.done) continue;
      if (run.waiting?.(this.policy.timeoutMs) === true) {
        (waited ??= []).push(run);
        continue;
      }
      this.runs.ended(run);
      if (this.runs.isolated === run) this.endIsolation();
      const err = run.abort('ERR_TIMEOUT', `stage '${this.path}' timed out task ${run.taskId} after ${this.policy.timeoutMs} ms (timeoutMs); the handler's late result will be discarded.`);
      if (run.trace !== undefined) traceSettled(run.takeTrace(), false, err);
      this.runFailed(run.env, run.probe, err, 'ERR_TIMEOUT');
    }
    // Runs that had not started (TaskRun.waiting) get a new timeoutMs, at the end of the list: a
    // deadline of now + timeoutMs is the latest of all, so the list stays in deadline order.
    if (waited !== undefined && !this.halted) {
      for (const run of waited) {
        if (run.done) continue;
        this.runs.running.delete(run);
        run.deadline = now + this.policy.timeoutMs;
        this.runs.running.add(run);
      }
    }
    this.armTimer();
    if (this.status === 'running') this.host.scheduler.schedule(this);
  }
}

function isNameList(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((name) => typeof name === 'string');
}
