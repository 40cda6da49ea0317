import type { Envelope } from '../actors/envelope.js';
import type { Outcome, OutcomeFeed } from '../actors/outcomes.js';
import type { Clock } from '../src/clock.js';
import { BatonError, type ErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { DurableLog } from './durable-log.js';
import type { StageHost, StageInbox } from './stage-host.js';
import { JournalStore, MEMORY_STORE, type StageStore } from './stage-store.js';
import { FanJoins } from './fan-join.js';

/** The pipeline's shared services, as its ledger and stages use them. */
export interface LedgerDeps {
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  readonly feed: OutcomeFeed;
  /** The pipeline's journal side, or undefined without a journal. */
  readonly durable: DurableLog | undefined;
  /** Wall-clock ms for the journal's finishedAt. */
  readonly wall: () => number;
  stageNamed(name: string): StageInbox | undefined;
  /** A new seq from the pipeline's counter (a fan-out branch's). */
  nextSeq(): number;
  /** Takes a task into stage `name` beyond its inbox's bound (a replayed or re-created fan-out branch); false if there is no such stage. */
  adopt(name: string, env: Envelope): boolean;
}

/**
 * What a pipeline owes: every accepted task until its outcome. It is the host its stages call
 * (StageHost): task ids, `complete`, `deadLetter` and `abandon` (joining fanned-out branches,
 * recording the outcome in the journal first when there is one, delivering it after the commit),
 * and it keeps the counts and the `drain` waiters those settle. Owns: the counts (accepted,
 * pending, completed, dead-lettered), the ids of pending tasks sent with an id, the drain waiters
 * and the failure that ended the pipeline, if any.
 */
export class TaskLedger implements StageHost {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  accepted = 0;
  pending = 0;
  completed = 0;
  deadLettered = 0;
  /** Ids given to `send` of tasks still pending (duplicates are refused while pending). */
  readonly pendingIds = new Set<string>();
  /** Dead letters counted by stage and code ('<stage> <code>' -> n): few keys (stages x codes). */
  readonly deadByReason = new Map<string, number>();
  /** Set once the pipeline failed: `drain` rejects with it. */
  failure: BatonError | undefined = undefined;
  private drainers: { resolve: () => void; reject: (e: Error) => void }[] = [];
  // Copied out of deps: a completion reads them once per task.
  private readonly name: string;
  private readonly durable: DurableLog | undefined;
  private readonly feed: OutcomeFeed;
  /** With a journal: fanned-out tasks and their branches (fan-join.ts). */
  readonly joins: FanJoins | undefined;

  constructor(private readonly deps: LedgerDeps) {
    ({ scheduler: this.scheduler, clock: this.clock, random: this.random, events: this.events, name: this.name, durable: this.durable, feed: this.feed } = deps);
    const durable = this.durable;
    if (durable !== undefined) {
      this.joins = new FanJoins(durable, {
        taskId: (env) => this.taskId(env),
        deliver: (stage, env) => {
          if (!deps.adopt(stage, env)) this.unknownStage(env, stage);
        },
        completeTask: (parent, output, stage, attempts) => this.complete(parent, output, stage, attempts),
        deadLetterTask: (parent, stage, code, error, attempts) => this.deadLetter(parent, stage, code, error, attempts),
        nextSeq: () => deps.nextSeq(),
        uncount: (n) => {
          this.pending -= n;
          // After the commit that drops the row: drain promises a journal with nothing pending.
          if (this.pending === 0) durable.afterCommit(() => this.pending === 0 && this.drained());
        },
      });
      const joins = this.joins;
      durable.adoptRow = (env) => joins.adoptRecovered(env);
    } else this.joins = undefined;
  }

  /** A task came in (sent, recovered or replayed). */
  accept(id: string | undefined): void {
    if (id !== undefined) this.pendingIds.add(id);
    this.pending++;
    this.accepted++;
  }

  /** Resolves when every accepted task has its outcome; rejects if the pipeline failed. */
  drain(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainers.push({ resolve, reject }));
  }

  /** Rejects every drain waiter (the pipeline stopped or failed with tasks unfinished). */
  refuseDrainers(error: BatonError): void {
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.reject(error);
  }

  // ---- StageHost ----------------------------------------------------------------------------

  taskId(env: Envelope): string {
    return (env.id ??= `${this.name}-${env.seq}`);
  }

  stageNamed(name: string): StageInbox | undefined {
    return this.deps.stageNamed(name);
  }

  storeFor(stage: string): StageStore {
    return this.durable === undefined ? MEMORY_STORE : new JournalStore(this.durable, stage);
  }

  fanOut(env: Envelope, from: string, to: readonly string[], output: unknown): Envelope[] {
    return this.joins!.split(env, from, to, output);
  }

  complete(env: Envelope, output: unknown, stage: string, attempts: number): void {
    const fan = env.fan;
    if (fan !== undefined) {
      if (fan.journaled === true && this.joins!.completed(env, output, stage, attempts)) return;
      fan.outputs.push({ stage, output });
      if (--fan.open > 0) return;
      if (fan.dead !== undefined) return this.finishFanOut(env, stage, attempts);
      output = fan.outputs;
    }
    const durable = this.durable;
    if (durable === undefined) return this.finish(env, 'completed', output, undefined, stage, attempts);
    durable.push({ op: 'complete', id: this.taskId(env), stage, attempts, output: env.bytes!, at: this.deps.wall() });
    env.bytes = undefined;
    // The outcome is delivered once it is durable, so a task redone after a crash is reported once.
    durable.afterCommit((err) => err === undefined && this.finish(env, 'completed', output, undefined, stage, attempts));
  }

  deadLetter(env: Envelope, stage: string, code: string, error: ErrorInfo, attempts: number): void {
    const fan = env.fan;
    if (fan?.journaled === true) {
      this.noteLastError(env, stage, error, attempts);
      if (this.joins!.deadLettered(env, stage, code, attempts)) return;
    } else if (fan !== undefined) {
      if (fan.dead === undefined) {
        fan.dead = env;
        fan.deadCode = code;
      }
      if (--fan.open > 0) return;
    }
    this.noteLastError(env, stage, error, attempts);
    const info = { ...error, code };
    const reason = `${stage} ${code}`;
    this.deadByReason.set(reason, (this.deadByReason.get(reason) ?? 0) + 1);
    this.events.emit({ type: 'dead-lettered', path: `${this.name}/${stage}`, at: this.clock.now(), taskId: this.taskId(env), error: info });
    const durable = this.durable;
    if (durable === undefined) return this.finish(env, 'dead-lettered', fan?.outputs, info, stage, attempts);
    durable.push({ op: 'dead', id: this.taskId(env), stage, attempts, code, errors: durable.encodeErrors(env.errors), at: this.deps.wall() });
    durable.afterCommit((err) => err === undefined && this.finish(env, 'dead-lettered', undefined, info, stage, attempts));
  }

  /**
   * The history ends with what ended the task. When that was not a failed run (an unknown route, a
   * full inbox under 'drop', a stop, a stage gone at recovery) it is added here, so the journal's
   * copy of the outcome names the same error as the live one.
   */
  private noteLastError(env: Envelope, stage: string, error: ErrorInfo, attempts: number): void {
    const last = env.errors?.[env.errors.length - 1]?.error;
    if (last === undefined || last.message !== error.message || last.name !== error.name) {
      (env.errors ??= []).push({ stage, attempt: attempts, at: this.clock.now(), charged: false, error });
    }
  }

  /** A branch for a stage that is gone (re-created at recovery, or replayed): dead-lettered as a route to it would be. */
  private unknownStage(env: Envelope, stage: string): void {
    const err = new BatonError('ERR_UNKNOWN_ADDRESS', `task ${this.taskId(env)} fanned out to stage '${stage}', which pipeline '${this.name}' no longer has; add the stage back and replay the task.`, { stage });
    this.deadLetter(env, stage, err.code, { name: err.name, code: err.code, message: err.message }, env.attempts);
  }

  abandon(env: Envelope, stage: string, code: string, error: ErrorInfo): void {
    if (this.durable === undefined) return this.deadLetter(env, stage, code, error, env.attempts);
    this.durable.live.delete(this.taskId(env)); // it stays pending in the journal for the next start
  }

  private finish(env: Envelope, status: Outcome['status'], output: unknown, error: (ErrorInfo & { code: string }) | undefined, stage: string, attempts: number): void {
    this.pending--;
    if (status === 'completed') this.completed++;
    else this.deadLettered++;
    if (env.id !== undefined) {
      this.pendingIds.delete(env.id);
      this.durable?.live.delete(env.id);
    }
    const feed = this.feed;
    if (feed.listening) {
      const errors = env.fan?.dead?.errors ?? env.errors ?? [];
      const base = { id: this.taskId(env), key: env.key, errors, stage, attempts };
      feed.emit(status === 'completed' ? { ...base, status, output } : { ...base, status, error: error!, ...(output !== undefined ? { output } : {}) });
    }
    if (this.pending === 0) this.drained();
  }

  /** The last branch of a fanned-out task completed, but an earlier branch was dead-lettered. */
  private finishFanOut(env: Envelope, stage: string, attempts: number): void {
    const dead = env.fan!.dead!;
    const last = dead.errors?.[dead.errors.length - 1];
    const code = env.fan!.deadCode ?? 'ERR_TASK_FAILED';
    env.fan = { ...env.fan!, open: 1 };
    this.deadLetter(env, stage, code, last?.error ?? { name: 'Error', message: 'a branch was dead-lettered' }, attempts);
  }

  private drained(): void {
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.resolve();
  }
}
