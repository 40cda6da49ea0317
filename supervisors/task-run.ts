import type { Cost } from '../policies/budget.js';
import type { RunTrace } from '../src/diagnostics.js';
import { BatonError } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import type { TaskContext } from '../actors/agent.js';
import type { Envelope } from '../actors/envelope.js';

/** What a run needs from its stage; kept narrow so a run is one small object. */
export interface RunOwner {
  readonly name: string;
  readonly log: Logger;
  taskId(env: Envelope): string;
  /** A run reports its cost (ctx.spend), with its task's key (budgets per key). */
  spend(cost: Cost, key: string | undefined): void;
}

/**
 * One run of a handler on one task: the handler's `ctx`, and the stage's bookkeeping for it.
 * `signal` and `log` are made on first use, so a synchronous handler that never touches them
 * costs one small object and no AbortController.
 */
export class TaskRun<S = unknown> implements TaskContext<S> {
  /** Set once the run has an outcome here (settled, timed out, aborted); later results are discarded. */
  done = false;
  deadline = Infinity;
  /** Links in the stage's RunList (async runs in start order). */
  prev: TaskRun | undefined = undefined;
  next: TaskRun | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private logger: Logger | undefined = undefined;
  /**
   * Told the reason when the run is aborted (timed out, or its stage stops): how a runner inside
   * Baton (a thread agent's pool) stops the run without an AbortSignal. Making a signal and
   * listening to it cost about 1.5 us a run, a third of a thread stage's time per trivial task.
   */
  onAbort: ((reason: BatonError) => void) | undefined = undefined;
  /**
   * Whether the run has not had its timeoutMs yet, set by a runner that queues runs (a thread agent's
   * pool: a task waits for a worker, or in a worker behind a synchronous handler, or was sent again to
   * a new worker less than timeoutMs ago). A run still waiting at its deadline is given a new
   * timeoutMs instead of timing out: the handler that holds it up times out on its own, and its worker
   * is terminated, so a task is never charged for a runaway beside it.
   */
  waiting: ((timeoutMs: number) => boolean) | undefined = undefined;

  /**
   * Set on runs of the bare async lane (one-parameter handler, no route): nobody outside the stage
   * ever holds them, so once one settles well it is kept for the next run instead of allocated anew.
   */
  pooled = false;
  /** A pooled run's callbacks for its promise's then(), made once and kept with it (see AgentSupervisor.awaitRun). */
  onValue: ((value: unknown) => void) | undefined = undefined;
  onError: ((error: unknown) => void) | undefined = undefined;
  /** The run's context on the `baton:run` tracing channel, while someone subscribes (src/diagnostics.ts). */
  trace: RunTrace | undefined = undefined;

  /** The run's trace, handed over once (its async end is published once). */
  takeTrace(): RunTrace {
    const trace = this.trace!;
    this.trace = undefined;
    return trace;
  }

  constructor(
    readonly owner: RunOwner,
    // Writable only for reuse (see `pooled`); a handler's ctx never changes under it.
    public env: Envelope,
    readonly state: S,
    /** The breaker's probe: its failure is judged differently. */
    readonly probe: boolean,
  ) {}

  get taskId(): string {
    return this.owner.taskId(this.env);
  }
  get key(): string | undefined {
    return this.env.key;
  }
  get attempt(): number {
    return this.env.attempts + 1;
  }
  get stage(): string {
    return this.owner.name;
  }
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }
  get log(): Logger {
    return (this.logger ??= this.owner.log.child({ taskId: this.taskId, attempt: this.attempt }));
  }
  spend(cost: Cost): void {
    this.owner.spend(cost, this.env.key);
  }

  abort(code: 'ERR_TIMEOUT' | 'ERR_ABORTED', message: string): BatonError {
    const reason = new BatonError(code, message, { stage: this.owner.name, taskId: this.taskId });
    this.controller?.abort(reason);
    this.onAbort?.(reason);
    return reason;
  }
}

/**
 * The async runs of a stage in start order (which is deadline order). Intrusive links instead of a
 * Set: adding and removing a run is four pointer writes, no hashing, on a path taken twice per
 * async run.
 */
export class RunList implements Iterable<TaskRun> {
  head: TaskRun | undefined = undefined;
  private tail: TaskRun | undefined = undefined;

  add(run: TaskRun): void {
    run.prev = this.tail;
    run.next = undefined;
    if (this.tail === undefined) this.head = run;
    else this.tail.next = run;
    this.tail = run;
  }

  delete(run: TaskRun): void {
    if (run.prev !== undefined) run.prev.next = run.next;
    else if (this.head === run) this.head = run.next;
    else return; // not in the list
    if (run.next !== undefined) run.next.prev = run.prev;
    else this.tail = run.prev;
    run.prev = run.next = undefined;
  }

  *[Symbol.iterator](): IterableIterator<TaskRun> {
    for (let run = this.head; run !== undefined; ) {
      const next = run.next; // the current run may be deleted while the caller holds it
      yield run;
      run = next;
    }
  }

  clear(): void {
    for (const run of this) run.prev = run.next = undefined;
    this.head = this.tail = undefined;
  }
}
