import type { Journal, JournalOp, PipelineJournal, StoredTask } from '../../system/index.js';

/**
 * A journal whose writes and pages answer a turn of the event loop later, as a remote journal
 * (NATS JetStream, Postgres) does. `commit` hands its ops over at once (as a publish leaves the
 * process: a process killed after that has written them) and its acknowledgement arrives on a later
 * setImmediate; `pendingAt` and `pruneCompleted` read at once and answer there too. Wraps a
 * synchronous backend, so the contract suite and the properties run the runtime's asynchronous
 * paths against the same semantics. `maxInFlight` counts commits in flight at once, to show the
 * runtime keeps at most one.
 */
export function asyncJournal(inner: Journal): Journal & { readonly maxInFlight: number } {
  let inFlight = 0;
  let maxInFlight = 0;
  /** Runs `fn` now; its result or error is the answer, given on a later turn. */
  const later = <T>(fn: () => T | PromiseLike<T>): Promise<T> => {
    let answer: { ok: true; value: T | PromiseLike<T> } | { ok: false; error: unknown };
    try {
      answer = { ok: true, value: fn() };
    } catch (error) {
      answer = { ok: false, error };
    }
    return new Promise<T>((resolve, reject) => setImmediate(() => (answer.ok ? resolve(answer.value) : reject(answer.error))));
  };
  const pipeline = (p: PipelineJournal): PipelineJournal => ({
    name: p.name,
    lastSeq: () => p.lastSeq(),
    status: (id) => p.status(id),
    task: (id) => p.task(id),
    pendingAt: (stage, afterSeq, upToSeq, limit): Promise<StoredTask[]> => later(() => p.pendingAt(stage, afterSeq, upToSeq, limit)),
    pendingStages: () => p.pendingStages(),
    commit: (ops: readonly JournalOp[]): Promise<void> => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return later(() => p.commit(ops)).finally(() => inFlight--);
    },
    recovered: () => p.recovered(),
    runningAtCrash: () => p.runningAtCrash(),
    releaseRunning: () => p.releaseRunning(),
    outcome: (id) => p.outcome(id),
    deadLetters: (limit, offset) => p.deadLetters(limit, offset),
    pruneCompleted: (before) => later(() => p.pruneCompleted(before)),
    counts: () => p.counts(),
    state: (key) => p.state(key),
  });
  const parts = new Map<string, PipelineJournal>();
  return {
    kind: `${inner.kind}, asynchronous`,
    get durable() {
      return inner.durable;
    },
    now: () => inner.now(),
    openPipeline(name) {
      let p = parts.get(name);
      if (p === undefined) parts.set(name, (p = pipeline(inner.openPipeline(name))));
      return p;
    },
    pipelines: () => inner.pipelines(),
    close: () => inner.close(),
    get maxInFlight() {
      return maxInFlight;
    },
  };
}
