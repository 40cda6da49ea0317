import { isLater, type Journal, type Later, type PipelineJournal } from '../system/index.js';

/**
 * A journal as one process sees it, for simulating that process's death in-process: until `kill()`
 * every call goes through; after it, writes vanish (commits, releases, prunes, close), as they do
 * when a process is killed between two transactions. The journal underneath stays open for the
 * next incarnation, which gets a fresh view.
 */
export interface KillableJournal extends Journal {
  /** From now on writes vanish, as when the process is killed between two commits. */
  kill(): void;
  readonly killed: boolean;
  /**
   * Journal calls made and answers received so far. A harness that waits for the runtime to go
   * quiet counts these too: with an asynchronous backend, work goes on while only the journal moves.
   */
  readonly activity: number;
  /** Answers still to come (a remote backend such as NATS): a harness waits for them in real time. */
  readonly inFlight: number;
}

/** A view of `inner` that a test can kill (see KillableJournal); `runScenario` uses one per incarnation for its planned kills. */
export function killableJournal(inner: Journal): KillableJournal {
  let killed = false;
  let activity = 0;
  let inFlight = 0;
  /** Counts a call, and its answer when it comes later. */
  const watched = <T>(answer: Later<T>): Later<T> => {
    activity++;
    if (isLater(answer)) {
      inFlight++;
      const done = (): void => {
        inFlight--;
        activity++;
      };
      answer.then(done, done);
    }
    return answer;
  };
  const pipeline = (p: PipelineJournal): PipelineJournal => ({
    name: p.name,
    lastSeq: () => p.lastSeq(),
    status: (id) => p.status(id),
    task: (id) => p.task(id),
    pendingAt: (stage, afterSeq, upToSeq, limit) => watched(p.pendingAt(stage, afterSeq, upToSeq, limit)),
    pendingStages: () => p.pendingStages(),
    // An asynchronous backend's answer is passed on: the runtime waits for it as it would without the harness.
    commit: (ops) => (killed ? undefined : watched(p.commit(ops))),
    recovered: () => void (killed || p.recovered()),
    runningAtCrash: () => p.runningAtCrash(),
    releaseRunning: () => void (killed || p.releaseRunning()),
    outcome: (id) => p.outcome(id),
    deadLetters: (limit, offset) => p.deadLetters(limit, offset),
    pruneCompleted: (before) => (killed ? 0 : p.pruneCompleted(before)),
    counts: () => p.counts(),
    state: (key) => p.state(key),
  });
  return {
    kind: inner.kind,
    get durable() {
      return inner.durable;
    },
    now: () => inner.now(),
    openPipeline: (name) => pipeline(inner.openPipeline(name)),
    pipelines: () => inner.pipelines(),
    close: () => undefined, // the harness closes the journal underneath when the scenario ends
    kill: () => void (killed = true),
    get killed() {
      return killed;
    },
    get activity() {
      return activity;
    },
    get inFlight() {
      return inFlight;
    },
  };
}
