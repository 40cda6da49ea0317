import { Envelope } from '../actors/envelope.js';
import { startProbe } from '../policies/breaker.js';
import { StageHandoff } from './stage-handoff.js';
import { TaskRun } from './task-run.js';

/** Compared with a promise's then(), never called unbound. */
const NATIVE_THEN = Promise.prototype.then;

/** What a spare run points at: it must not keep a finished task's payload alive. */
const NO_ENVELOPE = new Envelope(undefined, 0, undefined, undefined);

export { type StageHost, type StageStats } from './stage-host.js';

/**
 * The local supervisor of one agent. It owns the agent's inbox (a restart never loses queued or
 * in-flight tasks), runs the handler, retries failed tasks with backoff, restarts the worker with
 * fresh state, quarantines poison tasks, holds the inbox behind a breaker during an outage, and
 * hands results on. Decisions are the pure functions of backoff.ts, intensity.ts and breaker.ts;
 * this class only keeps their state and acts on them. Here: the run loop, the bare lane, and waiting
 * for async runs; a success goes on in stage-handoff.ts, a failure in stage-failures.ts.
 */
export class AgentSupervisor extends StageHandoff {
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
      } else if (this.keys === undefined && !(this.troubled && this.breaker.freshFailures > 0)) {
        env = ready.length > 0 ? ready.shift() : inbox.shift(); // take(false), inlined: the hot path
      } else {
        // While fresh failures add up towards the breaker, fresh tasks go first: due retries would
        // fail again in an outage and be charged (a handler slower than the retry backoff let them
        // crowd the fresh tasks out, and healthy tasks were dead-lettered before the breaker opened).
        env = this.take(this.troubled && this.breaker.status === 'closed' && this.breaker.freshFailures > 0);
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
        this.awaitRun(this.pooledRun(env), out as PromiseLike<unknown>);
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

  /**
   * A run record for the bare async lane, from the spare ones if any. The handler never sees it, so
   * one that settled well can be reused: at concurrency 64 a stage keeps at most 64 and allocates
   * nothing per async run (measured ~10% more async tasks/s through 5 stages than a new one each).
   */
  private pooledRun(env: Envelope): TaskRun {
    const run = this.spare;
    if (run === undefined) {
      const fresh = new TaskRun(this, env, undefined, false);
      fresh.pooled = true;
      return fresh;
    }
    this.spare = run.next;
    run.next = undefined;
    run.env = env;
    run.done = false;
    return run;
  }

  /** Spare bare-lane runs, linked through `next` (they are in no RunList while spare). */
  private spare: TaskRun | undefined = undefined;

  private recycle(run: TaskRun): void {
    run.env = NO_ENVELOPE;
    run.next = this.spare;
    this.spare = run;
  }

  hasWork(): boolean {
    if (this.status !== 'running' || this.outCount > 0 || this.inFlight >= this.policy.concurrency) return false;
    if (this.isolatedRun !== undefined || (this.inFlight > 0 && this.ready.peek()?.suspect === true)) return false;
    const waiting = this.ready.length > 0 || this.inbox.length > 0 || (this.durable?.hasBacklog(this.name) ?? false);
    if (this.breaker.status !== 'closed') return waiting && this.breaker.status === 'open' && this.host.clock.now() >= this.breaker.probeAt;
    return waiting;
  }

  /**
   * The next task to run: due retries and returned tasks first, then the inbox. A probe prefers fresh
   * tasks, the inbox first: a failed probe waits at the end of `ready` (not in the inbox, which
   * would break its bound), so probes rotate through the waiting tasks instead of retrying one.
   */
  protected take(preferFresh: boolean): Envelope | undefined {
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
  protected startRun(env: Envelope, probe: boolean): TaskRun | undefined {
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
    // Only the native then() is sure to call back at most once (reused records rely on that): a
    // thenable, or a Promise subclass overriding then(), may call back twice; `await` guards them.
    if (!run.pooled || promise.then !== NATIVE_THEN) return void this.await(run, promise);
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
    if (run.done || this.troubled) return this.settled(run, true, value);
    run.done = true;
    this.running.delete(run);
    this.inFlight--;
    const env = run.env;
    this.completed++;
    const attempts = env.attempts + 1;
    env.attempts = 0;
    env.payload = value;
    this.recycle(run);
    this.handOn(env, value, attempts);
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
    run.done = true;
    if (this.isolatedRun === run) this.endIsolation();
    this.running.delete(run);
    this.inFlight--;
    if (ok) {
      this.succeeded(run.env, run, run.probe, value);
      // Only a run that settled well here is reused: a failed one may be kept (streak, history).
      if (run.pooled) this.recycle(run);
    } else this.failed(run, value);
    if (!this.scheduled && this.status === 'running') this.host.scheduler.schedule(this);
  }
}
