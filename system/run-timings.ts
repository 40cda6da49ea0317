import { arrivals, runChannel, type RunTrace } from '../src/diagnostics.js';

/**
 * How long handler runs take, per stage, as histograms: `createSystem({ timings: true })`. It listens
 * on the `baton:run` tracing channel (src/diagnostics.ts), so it costs nothing until it is on, and
 * then what tracing costs: every run takes the stage's general lane (about 2.0 M against 7.5 M sync
 * tasks/s through 5 stages, measured with an empty subscriber) plus two clock reads. A run is timed
 * from its start to its end: the return of a synchronous handler, or the settling of its promise
 * (a timeout ends it too). The channel is process-wide: two systems in one process with pipelines of
 * the same name share their histograms.
 */
export class RunTimings {
  private readonly stages = new Map<string, StageHistogram>();
  private readonly queued = new Map<string, StageHistogram>();
  private readonly started = new WeakMap<RunTrace, number>();
  private readonly handlers = {
    start: (trace: RunTrace) => {
      this.started.set(trace, performance.now());
      if (trace.queuedMs !== undefined) observe(this.queued, trace.path, trace.queuedMs / 1000);
    },
    end: (trace: RunTrace) => {
      if (trace.async !== true) this.observe(trace);
    },
    asyncStart: () => undefined,
    asyncEnd: (trace: RunTrace) => this.observe(trace),
    error: () => undefined,
  };

  constructor() {
    runChannel.subscribe(this.handlers);
    arrivals.wanted++;
  }

  private closed = false;

  /** Stops listening (system.shutdown). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    runChannel.unsubscribe(this.handlers);
    arrivals.wanted--;
  }

  /** Every stage's run times, by `<pipeline>/<stage>`. */
  histograms(): ReadonlyMap<string, Readonly<StageHistogram>> {
    return this.stages;
  }

  /**
   * Every stage's time in inbox, by `<pipeline>/<stage>`: from a task's arrival at the stage to the
   * start of its first run there (tasks that arrived while timings were on; retries not counted).
   */
  queueTimes(): ReadonlyMap<string, Readonly<StageHistogram>> {
    return this.queued;
  }

  private observe(trace: RunTrace): void {
    const t0 = this.started.get(trace);
    if (t0 === undefined) return;
    this.started.delete(trace);
    observe(this.stages, trace.path, (performance.now() - t0) / 1000);
  }
}

function observe(into: Map<string, StageHistogram>, path: string, seconds: number): void {
  let h = into.get(path);
  if (h === undefined) into.set(path, (h = { counts: new Array<number>(RUN_BUCKETS.length + 1).fill(0), sum: 0, count: 0 }));
  let i = 0;
  while (i < RUN_BUCKETS.length && seconds > RUN_BUCKETS[i]!) i++;
  h.counts[i]!++;
  h.sum += seconds;
  h.count++;
}

/** One stage's run times: counts per bucket (not cumulative; the last is above every bound), their sum in seconds, and how many. */
export interface StageHistogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * Upper bounds of the buckets, in seconds: from 0.5 ms (a parse, a lookup) to 60 s (a slow model
 * call; the default timeoutMs), about x2.5 apart, 16 buckets and +Inf.
 */
export const RUN_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
