import type { Agent } from '../actors/agent.js';
import type { DurableLog } from './durable-log.js';
import type { Envelope } from '../actors/envelope.js';
import type { TimerHandle } from '../src/clock.js';
import { BatonError, toErrorInfo } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import { Mailbox } from '../src/mailbox.js';
import { RingBuffer } from '../src/ring-buffer.js';
import type { Runnable } from '../src/scheduler.js';
import type { AgentPolicy } from '../policies/agent-policy.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { calculateDelay } from '../policies/backoff.js';
import { CLOSED, type BreakerState } from '../policies/breaker.js';
import type { ChildParent, SupervisedChild } from './child.js';
import { recordRestart, type RestartWindow } from '../policies/intensity.js';
import { KeyOrder } from './key-order.js';
import { NONE, NO_WINDOW, type StageHost, type StageStats, type Status } from './stage-host.js';
import { RunList, type TaskRun } from './task-run.js';

// A stage's state and lifecycle: its queues and counters, its worker (init, restart, escalation), its
// place in the supervision tree, and its one timer. The failure rules live in stage-failures.ts and the
// run loop and handoff in agent-supervisor.ts; the three are one object (AgentSupervisor), split by concern.

/** The state and lifecycle half of an agent supervisor (see AgentSupervisor). */
export abstract class StageBase implements Runnable, SupervisedChild {
  scheduled = false;
  parent: ChildParent | null = null;
  /** The stage a task goes to after this one, unless the agent routes. */
  next: AgentSupervisor | null = null;
  readonly path: string;
  readonly name: string;
  readonly inbox: Mailbox<Envelope>;

  /** Due retries and tasks returned uncharged: they run before the inbox. */
  protected readonly ready = new RingBuffer<Envelope>(4);
  /** Retries waiting out their backoff, sorted by dueAt. */
  protected delayed: Envelope[] = NONE;
  /** Async runs in start order, which is deadline order (one timeoutMs per stage). */
  protected readonly running = new RunList();
  // (The queues below start at 4 slots and grow: an idle agent costs about 1 KB.)
  /** Outputs waiting for room downstream (back-pressure), in completion order. */
  protected out: { readonly envs: RingBuffer<Envelope>; readonly to: RingBuffer<AgentSupervisor> } | undefined = undefined;
  protected outCount = 0;
  protected readonly keys: KeyOrder | undefined;
  protected status: Status = 'starting';
  protected inFlight = 0;
  protected state: unknown = undefined;
  protected breaker: BreakerState = CLOSED;
  /** Set by any failure; a success then clears the breaker, streak and restart window (one flag on the hot path). */
  protected troubled = false;
  protected runNow = 0;
  /** Fresh tasks charged since the last success: if the breaker opens, they were outage victims. */
  protected streak: Envelope[] = NONE;
  protected window: RestartWindow = NO_WINDOW;
  protected initFailures = 0;
  protected initGen = 0;
  protected timer: TimerHandle | undefined = undefined;
  protected timerAt = Infinity;
  protected initTimer: TimerHandle | undefined = undefined;
  protected wakeFn: (() => void) | undefined = undefined;
  protected timerFn: (() => void) | undefined = undefined;
  protected get wake(): () => void {
    return (this.wakeFn ??= () => this.host.scheduler.schedule(this));
  }
  protected get onTimer(): () => void {
    return (this.timerFn ??= () => this.timerFired());
  }
  // Counters are plain fields: the hot path bumps `received` and `completed` once per task.
  protected received = 0;
  protected completed = 0;
  protected failures = 0;
  protected retried = 0;
  protected restarts = 0;
  protected deadLettered = 0;
  protected readonly handle: Agent['handle'];
  /** The handler takes no ctx and there is no route: sync runs need no TaskRun. */
  protected readonly bare: boolean;
  protected readonly durable: DurableLog | undefined;
  /** Durable stages batch their start records; once a handler returned a promise, batches shrink to free slots. */
  protected sawAsync = false;
  /** Durable stages: the suspect running alone; nothing else starts here until it settles. */
  protected isolatedRun: TaskRun | undefined = undefined;
  protected readonly route: Agent['route'];

  constructor(
    protected readonly host: StageHost,
    readonly def: Agent,
    readonly policy: AgentPolicy,
    pipelinePath: string,
    log: Logger,
  ) {
    this.name = def.name;
    this.path = `${pipelinePath}/${def.name}`;
    this.parentLog = log;
    this.inbox = new Mailbox<Envelope>(policy.mailbox);
    this.keys = policy.orderByKey ? new KeyOrder(this.inbox) : undefined;
    this.handle = def.handle;
    this.route = def.route;
    this.bare = def.handle.length < 2 && def.route === undefined;
    this.durable = host.durable;
  }

  get terminated(): boolean {
    return this.status === 'terminated';
  }

  protected parentLog: Logger;
  protected childLog: Logger | undefined = undefined;

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

  /** This stage as its pipeline knows it: AgentSupervisor is the only concrete stage. */
  protected get self(): AgentSupervisor {
    return this as unknown as AgentSupervisor;
  }
  abstract run(budget: number): number;
  abstract hasWork(): boolean;
  /** A run failed: the rules of stage-failures.ts. */
  protected abstract failed(run: TaskRun, thrown: unknown, code?: string): void;

  // ---- the worker ---------------------------------------------------------------------------

  protected restartWorker(): void {
    this.restarts++;
    this.host.events.emit({ type: 'restarted', path: this.path, at: this.host.clock.now(), restarts: this.restarts });
    if (this.def.init !== undefined && !this.policy.keepState && this.status === 'running') this.runInit();
  }

  protected runInit(): void {
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

  protected becomeRunning(): void {
    this.status = 'running';
    this.initFailures = 0; // init worked: the next failing init starts the restart backoff again at minMs
    this.armTimer();
    if (this.hasWork() || this.outCount > 0) this.host.scheduler.schedule(this);
  }

  /** `init` threw: an agent that cannot start is the case restart intensity is for. */
  protected initFailed(thrown: unknown): void {
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

  protected escalate(thrown: unknown): void {
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
    if (this.isolatedRun !== undefined) this.endIsolation();
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
    for (const env of left) this.host.abandon(env, this.self, code, info);
    this.inbox.wakeAll();
    this.host.events.emit({ type: 'stopped', path: this.path, at: this.host.clock.now(), reason });
  }

  // ---- the one timer ------------------------------------------------------------------------

  protected armTimer(): void {
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

  /**
   * A suspect's isolated run ended (settled or timed out). The journal must stop naming it as
   * running alone: a crash during its retry backoff would charge it ERR_PROCESS_DIED.
   */
  protected endIsolation(): void {
    this.isolatedRun = undefined;
    this.durable?.push({ op: 'start', stage: this.name, ids: [], isolated: false });
  }

  /** Read through a method: TypeScript would narrow `status` across calls that change it. */
  protected halted(): boolean {
    return this.status === 'suspended' || this.status === 'terminated';
  }

  protected cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  protected timerFired(): void {
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
      if (this.isolatedRun === run) this.endIsolation();
      this.inFlight--;
      const err = run.abort('ERR_TIMEOUT', `stage '${this.path}' timed out task ${run.taskId} after ${this.policy.timeoutMs} ms (timeoutMs); the handler's late result will be discarded.`);
      this.failed(run, err, 'ERR_TIMEOUT');
    }
    this.armTimer();
    if (this.status === 'running') this.host.scheduler.schedule(this);
  }
}
