import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import type { TaskContext, ThreadLimits } from '../actors/agent.js';
import { unserialisable } from '../src/codec.js';
import { BatonError, type BatonErrorCode } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import { TaskRun } from './task-run.js';
import { decided, rebuild, type ErrorTuple } from './decided.js';
import { PoolTask, WorkerSlot } from './pool-task.js';

/**
 * A thread agent's worker threads, behind a handler-shaped function: the stage calls `run(input,
 * ctx)` as it calls any async handler, and keeps every rule it has (deadline, retries, breaker,
 * dead letters, key order, journal). Owns: the workers (started with the pool, replaced as they die, `threads` of them),
 * the tasks waiting to be sent, and for each worker the tasks it holds.
 *
 * Contract:
 * - Tasks cross in batches: the runs a stage starts in one turn go to each worker as one message
 *   (msgpackr, copied out of its shared pool and transferred), and answers come back batched too.
 *   A worker holds at most concurrency/threads tasks (rounded up), and only a worker that has loaded
 *   its module gets any: the others wait in the pool for the first free place.
 * - Hard kill: when a run is aborted (the stage timed it out, cancelled it, or is restarting), the
 *   worker running it is terminated, so a handler that never yields ends too. The other tasks in
 *   that worker go back to the front of the queue uncharged and run again in a fresh worker. The
 *   stage tells a run through TaskRun.onAbort, not an AbortSignal (a signal per run cost a third of
 *   the time of a trivial task: 190k tasks/s with one, 720-920k without).
 * - A run's timeoutMs counts while its handler can run: at its deadline, a task still waiting for
 *   a worker, held up by another task's synchronous handler in its worker, or sent again to a new
 *   worker less than timeoutMs ago, gets a new timeoutMs (TaskRun.waiting, PoolTask.heldUp).
 *   Without this, a task batched behind an endless loop timed out with it, and was charged for it.
 * - A worker that dies by itself (out of its heap, process.exit, an uncaught error in a timer)
 *   rejects the task that was running synchronously when it died (ERR_WORKER_MEMORY or
 *   ERR_WORKER_EXITED; the stage charges it like any failure); if none was, every task it had
 *   started and not answered, since any of them may be the cause. Tasks it had not started are
 *   sent again, uncharged.
 * - An input or output msgpack cannot carry as it is rejects that run with ERR_INVALID_INPUT naming the path.
 * - A worker that dies before its module has loaded (a missing export, a throwing `init`) breaks
 *   the pool: every run then rejects with ERR_INVALID_OPTION naming the module, until the pipeline is
 *   spawned again. So does a worker not ready within startTimeoutMs when none ever was, or the third
 *   such start in a row (an `init()` that never settles would hang every task at the stage).
 * - Idle workers do not keep the process alive (unref); `close()` terminates them.
 */
export class ThreadPool {
  private readonly workers: WorkerSlot[] = [];
  private pending: PoolTask[] = [];
  private flushQueued = false;
  private closed = false;
  private broken: BatonError | undefined = undefined;
  private readonly packr = new Packr({ useRecords: false, moreTypes: true });
  private readonly tsx: string | undefined;

  /**
   * Settles once every first worker has loaded the module (or the pool broke trying): the stage's
   * `init`, so the stage runs no task, and no task's timeoutMs ticks, while its workers start
   * (~30 ms for a .js module, ~0.5 s under tsx). Never rejects: a broken pool rejects each run.
   */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  /** Tasks one worker holds at most: the stage's concurrency spread over the threads, rounded up. */
  private readonly perWorker: number;

  constructor(private readonly options: ThreadPoolOptions) {
    this.ready = new Promise<void>((resolve) => (this.markReady = resolve));
    this.perWorker = Math.ceil(options.concurrency / options.threads);
    this.tsx = needsTsx(options.module) ? resolveTsx() : undefined;
    if (needsTsx(options.module) && this.tsx === undefined) {
      this.broken = decided('ERR_INVALID_OPTION', `stage '${options.stage}': module ${options.module} is TypeScript, and no TypeScript loader (tsx) can be found to run it in a worker thread; compile it to .js and point module at that, or install tsx.`, { stage: options.stage });
      this.markReady();
      return;
    }
    // Started now, not on the first task: a worker takes ~30 ms to load a .js module (~0.5 s under
    // tsx), and that time would count against the first tasks' timeoutMs.
    while (this.workers.length < options.threads) this.workers.push(this.spawn());
  }

  /** Runs one task in a worker: the stage's handler for this agent. */
  readonly run = (input: unknown, ctx: TaskContext<unknown>): Promise<unknown> => {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(decided('ERR_STOPPED', `stage '${this.options.stage}' stopped: its worker threads are closed.`, { stage: this.options.stage }));
    const problem = unserialisable(input);
    if (problem !== undefined) {
      return Promise.reject(decided('ERR_INVALID_INPUT', `the input of stage '${this.options.stage}' for task ${ctx.taskId} cannot cross into a worker thread: ${problem}. Thread agents take plain data (objects, arrays, strings, numbers, booleans, null, Date, bigint, Uint8Array, Set).`, { stage: this.options.stage, taskId: ctx.taskId }));
    }
    return new Promise<unknown>((resolve, reject) => {
      const task = new PoolTask(input, ctx.taskId, ctx.key ?? null, ctx.attempt, resolve, reject);
      this.pending.push(task);
      if (ctx instanceof TaskRun) {
        ctx.onAbort = (reason) => this.abort(task, reason);
        ctx.waiting = (timeoutMs) => task.heldUp(timeoutMs);
      } else {
        const signal = ctx.signal;
        signal.addEventListener('abort', () => this.abort(task, signal.reason), { once: true });
      }
      this.queueFlush();
    });
  };

  /** Terminates every worker; runs still waiting reject with ERR_STOPPED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = decided('ERR_STOPPED', `stage '${this.options.stage}' stopped: its worker threads are closed.`, { stage: this.options.stage });
    const left = [...this.pending, ...this.workers.flatMap((w) => [...w.tasks.values()])];
    this.pending = [];
    const exits = this.workers.map((w) => {
      clearTimeout(w.startTimer);
      w.killed = true;
      return w.worker.terminate();
    });
    this.workers.length = 0;
    for (const task of left) task.fail(stopped);
    await Promise.all(exits);
  }

  /** Workers alive now (for stats and tests). */
  get size(): number {
    return this.workers.length;
  }

  // ---- sending --------------------------------------------------------------------------------

  /** Sends what waits, one message per worker: each task to the worker holding the fewest. */
  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.closed || this.broken !== undefined) return;
    while (this.workers.length < this.options.threads) this.workers.push(this.spawn());
    // Only to workers that have loaded: a task sent to one still starting (after a kill) would wait
    // behind its start and lose that time from its timeoutMs. Until one is ready, tasks wait here.
    const ready = this.workers.filter((w) => w.ready);
    if (ready.length === 0) return;
    const tasks = this.pending;
    const batches = new Map<WorkerSlot, unknown[]>();
    let i = 0;
    for (; i < tasks.length; i++) {
      const task = tasks[i]!;
      if (task.done) continue; // aborted while waiting
      let slot = ready[0]!;
      for (const w of ready) if (w.tasks.size < slot.tasks.size) slot = w;
      // Every worker is full: the rest wait here for the first answer, not behind a busy (or stuck) handler.
      if (slot.tasks.size >= this.perWorker) break;
      const ordinal = slot.sent++;
      task.ordinal = ordinal;
      task.sentAt = performance.now();
      task.slot = slot;
      if (slot.tasks.size === 0) slot.worker.ref(); // a worker with tasks keeps the process alive
      slot.tasks.set(ordinal, task);
      let batch = batches.get(slot);
      if (batch === undefined) batches.set(slot, (batch = []));
      batch.push(ordinal, task.taskId, task.key, task.attempt, task.input);
    }
    this.pending = i === tasks.length ? [] : tasks.slice(i);
    for (const [slot, batch] of batches) {
      // pack() answers a view into msgpackr's shared pool: copy it before the next pack, and transfer the copy.
      const bytes = new Uint8Array(this.packr.pack(batch));
      slot.worker.postMessage(bytes, [bytes.buffer]);
    }
  };

  private spawn(): WorkerSlot {
    const { module, stage, resourceLimits } = this.options;
    const shared = new SharedArrayBuffer(16);
    const entry = new URL(`./thread-worker${extensionOf(import.meta.url)}`, import.meta.url).href;
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: { entry, tsx: this.tsx ?? null, module, stage, slots: shared },
      ...(resourceLimits === undefined ? {} : { resourceLimits: { ...resourceLimits } }),
    });
    const slot = new WorkerSlot(worker, new Float64Array(shared));
    slot.startTimer = setTimeout(() => this.startTimedOut(slot), this.options.startTimeoutMs);
    slot.startTimer.unref();
    worker.unref();
    worker.on('message', (msg: unknown) => this.answered(slot, msg));
    worker.on('error', (err) => (slot.error = err));
    worker.on('exit', (code) => this.exited(slot, code));
    return slot;
  }

  // ---- answers and deaths ---------------------------------------------------------------------

  private answered(slot: WorkerSlot, msg: unknown): void {
    if (msg === 'ready') {
      clearTimeout(slot.startTimer);
      slot.ready = true;
      this.everReady = true;
      this.failedStarts = 0;
      if (this.workers.every((w) => w.ready)) this.markReady();
      if (this.pending.length > 0) this.flush();
      return;
    }
    const out = this.packr.unpack(msg as Uint8Array) as unknown[];
    for (let i = 0; i < out.length; i += 3) {
      const ordinal = out[i] as number;
      const task = slot.tasks.get(ordinal);
      if (task === undefined) continue;
      slot.tasks.delete(ordinal);
      if (out[i + 1] === 1) task.succeed(out[i + 2]);
      else task.fail(rebuild(out[i + 2] as ErrorTuple));
    }
    if (slot.tasks.size === 0 && !slot.killed) slot.worker.unref();
    if (this.pending.length > 0) this.flush();
  }

  /** A run's signal aborted: it fails with the reason, and the worker running it (if any) is terminated. */
  private abort(task: PoolTask, reason: unknown): void {
    if (task.done) return;
    task.fail(reason);
    const slot = task.slot;
    if (slot === undefined || slot.killed) return; // still waiting to be sent: flush skips it
    slot.killed = true;
    slot.tasks.delete(task.ordinal);
    this.retire(slot);
    this.options.log.warn({ stage: this.options.stage, taskId: task.taskId }, 'terminated the worker thread of a run that was aborted (timeout or stage restart)');
    void slot.worker.terminate();
    this.giveBack([...slot.tasks.values()]);
  }

  /**
   * A worker not ready after startTimeoutMs (its module's init() never settled, say) is terminated.
   * If no worker ever was ready, or this is the 3rd start in a row to fail, the pool breaks as for a
   * module that cannot load: waiting on would hang every task at this stage. Else another one starts.
   */
  private startTimedOut(slot: WorkerSlot): void {
    if (slot.ready || slot.killed || this.closed || this.broken !== undefined) return;
    slot.killed = true;
    this.retire(slot);
    void slot.worker.terminate();
    const { stage, module, startTimeoutMs } = this.options;
    this.options.log.error({ stage, module, startTimeoutMs }, 'a worker thread did not become ready in time');
    if (++this.failedStarts >= 3 || !this.everReady) {
      return this.breakPool(decided('ERR_INVALID_OPTION', `stage '${stage}': the worker thread for module ${module} did not load within ${startTimeoutMs} ms (its import or its init() did not finish); fix the module, or raise startTimeoutMs, and spawn the pipeline again.`, { stage, module }));
    }
    this.giveBack([...slot.tasks.values()]);
    this.queueFlush();
  }

  /** Consecutive worker starts that timed out (reset by a worker that becomes ready). */
  private failedStarts = 0;

  /** Whether any worker of this pool has become ready. */
  private everReady = false;

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flush);
  }

  /** The pool cannot run its module: every run waiting or to come fails with `error`. */
  private breakPool(error: BatonError): void {
    this.broken = error;
    const all = [...this.workers.flatMap((w) => [...w.tasks.values()]), ...this.pending];
    this.pending = [];
    for (const task of all) task.fail(error);
    this.markReady();
  }

  private exited(slot: WorkerSlot, exitCode: number): void {
    if (slot.killed || this.closed) return; // terminated here: its tasks are already dealt with
    slot.killed = true;
    this.retire(slot);
    const { stage, module } = this.options;
    const tasks = [...slot.tasks.values()];
    const why = slot.error === undefined ? `exited with code ${exitCode}` : `died: ${errorMessage(slot.error)}`;
    if (!slot.ready) {
      clearTimeout(slot.startTimer);
      // The module never loaded (or its init threw): every worker would do the same.
      this.options.log.error({ stage, module, err: slot.error }, 'a thread agent module could not be loaded');
      return this.breakPool(decided('ERR_INVALID_OPTION', `stage '${stage}': the worker thread for module ${module} ${why} before it was ready; fix the module (it must export handle(input, ctx) or a default function) and spawn the pipeline again.`, { stage, module }));
    }
    const running = slot.shared[0]!;
    const started = slot.shared[1]!;
    const outOfMemory = (slot.error as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    const culprits = tasks.filter((t) => (running >= 0 ? t.ordinal === running : t.ordinal < started));
    const innocent = tasks.filter((t) => !culprits.includes(t));
    this.options.log.warn({ stage, exitCode, err: slot.error, charged: culprits.length, resent: innocent.length }, 'a worker thread died');
    for (const task of culprits) {
      const code: BatonErrorCode = outOfMemory ? 'ERR_WORKER_MEMORY' : 'ERR_WORKER_EXITED';
      const hint = outOfMemory ? ' Raise resourceLimits.maxOldGenerationSizeMb if such inputs are normal.' : '';
      task.fail(decided(code, `the worker thread of stage '${stage}' ${why} while running task ${task.taskId}.${hint}`, { stage, taskId: task.taskId, exitCode }));
    }
    this.giveBack(innocent);
  }

  private retire(slot: WorkerSlot): void {
    const i = this.workers.indexOf(slot);
    if (i >= 0) this.workers.splice(i, 1);
  }

  /** Tasks a dead worker held that are not charged: first in line again, in the order they were sent. */
  private giveBack(tasks: PoolTask[]): void {
    const back = tasks.filter((t) => !t.done).sort((a, b) => a.ordinal - b.ordinal);
    if (back.length === 0) return;
    for (const t of back) {
      t.slot = undefined;
      t.resent = true;
    }
    this.pending = [...back, ...this.pending];
    this.queueFlush();
  }
}

export interface ThreadPoolOptions {
  /** The stage's path, for messages. */
  readonly stage: string;
  /** The handler module's file URL. */
  readonly module: string;
  readonly threads: number;
  /** The stage's concurrency: how many tasks the pool holds at most. */
  readonly concurrency: number;
  readonly resourceLimits?: ThreadLimits | undefined;
  /** How long a worker may take to become ready (load the module, run init()). */
  readonly startTimeoutMs: number;
  readonly log: Logger;
}

/**
 * The worker's first code, a CommonJS script: it registers tsx when the worker module or the
 * agent's module is TypeScript (in this repository's tests and bench; a worker does not inherit
 * the loader of its parent), then imports the worker module (thread-worker.ts).
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
const loader = workerData.tsx === null ? Promise.resolve() : import(workerData.tsx).then((tsx) => tsx.register());
loader.then(() => import(workerData.entry)).catch((err) => setImmediate(() => { throw err; }));
`;

const TS = /\.[mc]?ts$/;

function needsTsx(module: string): boolean {
  return TS.test(import.meta.url) || TS.test(module);
}

/** The file URL of tsx's ESM API (its CommonJS one registers hooks that fail to load in a worker). */
function resolveTsx(): string | undefined {
  for (const base of [import.meta.url, `${process.cwd()}/`]) {
    try {
      return pathToFileURL(createRequire(base).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    } catch {
      // not installed where this base looks; try the next
    }
  }
  return undefined;
}

function extensionOf(url: string): string {
  const m = /\.[a-z]+$/.exec(url);
  return m === null ? '.js' : m[0];
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
