import type { Worker } from 'node:worker_threads';

/** A task in a thread pool: waiting to be sent, or in a worker (its ordinal there). */
export class PoolTask {
  done = false;
  ordinal = -1;
  slot: WorkerSlot | undefined = undefined;
  /** When it was last sent to a worker (performance.now()). */
  sentAt = 0;
  /** Sent again after a worker that held it was terminated or died (ThreadPool.giveBack). */
  resent = false;
  /** Other synchronous handlers that held its thread at its deadlines, in the worker it is in now. */
  private putOff = 0;
  private heldBy = -1;
  private heldIn: WorkerSlot | undefined = undefined;

  /**
   * Whether, at its deadline, the task is held up by something else, so its own timeout must wait
   * (TaskRun.waiting). Not started: it waits in the pool for a worker (one is starting, or all are
   * full), or in its worker behind another task's synchronous handler; whatever holds it times out
   * on its own, and a runaway's worker is terminated, so this ends. Started, while another task's
   * synchronous handler holds the thread: its promise cannot settle, nor its answer go out. The same
   * holder will time out itself; but a worker kept busy by handler after handler, each shorter than
   * timeoutMs, could keep a hung task waiting for ever: past 3 different holders in one worker, its
   * own timeout stands. (Counted per holder, not per deadline: a loaded machine checks a deadline
   * several times while one runaway holds the thread, and a task behind it was charged ERR_TIMEOUT.)
   */
  heldUp(timeoutMs: number): boolean {
    const slot = this.slot;
    if (slot === undefined || this.ordinal >= slot.shared[1]!) return true;
    const running = slot.shared[0]!;
    // Sent again after its worker was terminated: its handler started over there, and has not yet
    // had a whole timeoutMs. (The property found it: a task that waited 500 ms behind an endless
    // loop was resent when the loop's worker was killed, ran 4 ms in the new worker, and met the
    // deadline of its first placement: ERR_TIMEOUT while its answer was on its way.)
    if (this.resent && performance.now() - this.sentAt < timeoutMs) return true;
    if (running < 0 || running === this.ordinal) return false;
    if (slot !== this.heldIn) {
      this.heldIn = slot;
      this.putOff = 0;
      this.heldBy = -1;
    }
    if (running !== this.heldBy) {
      this.heldBy = running;
      if (++this.putOff > 3) return false;
    }
    return true;
  }
  constructor(
    readonly input: unknown,
    readonly taskId: string,
    readonly key: string | null,
    readonly attempt: number,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (reason: unknown) => void,
  ) {}
  succeed(value: unknown): void {
    if (this.done) return;
    this.done = true;
    this.resolve(value);
  }
  fail(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.reject(reason);
  }
}

/** A worker thread of a pool, with the tasks it holds. */
export class WorkerSlot {
  /** Tasks sent to this worker, by their ordinal here. */
  readonly tasks = new Map<number, PoolTask>();
  sent = 0;
  ready = false;
  /** Ends a start that takes longer than startTimeoutMs (see ThreadPool.startTimedOut). */
  startTimer: NodeJS.Timeout | undefined = undefined;
  /** Terminated here (or already handled as dead): its 'exit' changes nothing. */
  killed = false;
  error: unknown = undefined;
  constructor(
    readonly worker: Worker,
    /** Written by the worker (thread-worker.ts): [0] the ordinal running synchronously now or -1, [1] tasks started. */
    readonly shared: Float64Array,
  ) {
    shared[0] = -1;
  }
}
