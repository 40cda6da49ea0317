import type { Clock } from '../src/clock.js';
import type { BatonError, ErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Logger } from '../src/logging.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { AgentSupervisor, StageHost } from './agent-supervisor.js';
import type { DurableLog } from './durable-log.js';
import { JournalStore, MEMORY_STORE, type StageStore } from './stage-store.js';
import type { Envelope } from '../actors/envelope.js';
import type { Outcome, OutcomeFeed } from '../actors/outcomes.js';

/**
 * A pipeline's finishing side, the StageHost its stages call: task ids, `complete`, `deadLetter`
 * and `abandon` (joining fanned-out branches, recording the outcome in the journal first when
 * there is one), and the counts and `drain` waiters they settle. Pipeline extends it (one object
 * split along a class chain, as the stages are), so a stage's call costs no extra layer; the
 * Pipeline's constructor sets the abstract members.
 */
export abstract class PipelineHost<O = unknown> implements StageHost {
  abstract readonly name: string;
  abstract readonly scheduler: Scheduler;
  abstract readonly clock: Clock;
  abstract readonly random: Random;
  abstract readonly events: EventStream;
  abstract readonly durable: DurableLog | undefined;
  protected abstract readonly log: Logger;
  protected abstract readonly feed: OutcomeFeed;
  protected abstract readonly journalClock: () => number;
  protected readonly byName = new Map<string, AgentSupervisor>();
  protected readonly pendingIds = new Set<string>();
  protected pending = 0;
  protected completed = 0;
  protected deadLettered = 0;
  protected drainers: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Set once the pipeline failed: `drain` rejects with it. */
  protected failure: BatonError | undefined = undefined;

  /** Resolves when every accepted task has its outcome; rejects if the pipeline failed. */
  drain(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainers.push({ resolve, reject }));
  }

  /** The stage with this name, for tests and tools. */
  stage(name: string): AgentSupervisor | undefined {
    return this.byName.get(name);
  }

  taskId(env: Envelope): string {
    return (env.id ??= `${this.name}-${env.seq}`);
  }

  stageNamed(name: string): AgentSupervisor | undefined {
    return this.byName.get(name);
  }

  storeFor(stage: string): StageStore {
    return this.durable === undefined ? MEMORY_STORE : new JournalStore(this.durable, stage);
  }

  complete(env: Envelope, output: unknown, stage: string, attempts: number): void {
    const fan = env.fan;
    if (fan !== undefined) {
      fan.outputs.push({ stage, output });
      if (--fan.open > 0) return;
      if (fan.dead !== undefined) return this.finishFanOut(env, stage, attempts);
      output = fan.outputs;
    }
    const durable = this.durable;
    if (durable === undefined) return this.finish(env, 'completed', output, undefined, stage, attempts);
    durable.push({ op: 'complete', id: this.taskId(env), stage, attempts, output: env.bytes!, at: this.wall() });
    env.bytes = undefined;
    // The outcome is delivered once it is durable, so a task redone after a crash is reported once.
    durable.afterCommit((err) => err === undefined && this.finish(env, 'completed', output, undefined, stage, attempts));
  }

  deadLetter(env: Envelope, stageName: string, code: string, error: ErrorInfo, attempts: number): void {
    const fan = env.fan;
    if (fan !== undefined) {
      if (fan.dead === undefined) {
        fan.dead = env;
        fan.deadCode = code;
      }
      if (--fan.open > 0) return;
    }
    // The history ends with what ended the task. When that was not a failed run (an unknown route, a
    // full inbox under 'drop', a stop, a stage gone at recovery) it is added here, so the journal's
    // copy of the outcome names the same error as the live one.
    const last = env.errors?.[env.errors.length - 1]?.error;
    if (last === undefined || last.message !== error.message || last.name !== error.name) {
      (env.errors ??= []).push({ stage: stageName, attempt: attempts, at: this.clock.now(), charged: false, error });
    }
    const info = { ...error, code };
    this.events.emit({ type: 'dead-lettered', path: `${this.name}/${stageName}`, at: this.clock.now(), taskId: this.taskId(env), error: info });
    const durable = this.durable;
    if (durable === undefined) return this.finish(env, 'dead-lettered', fan?.outputs, info, stageName, attempts);
    durable.push({ op: 'dead', id: this.taskId(env), stage: stageName, attempts, code, errors: durable.encodeErrors(env.errors), at: this.wall() });
    durable.afterCommit((err) => err === undefined && this.finish(env, 'dead-lettered', undefined, info, stageName, attempts));
  }

  abandon(env: Envelope, stage: string, code: string, error: ErrorInfo): void {
    if (this.durable === undefined) return this.deadLetter(env, stage, code, error, env.attempts);
    this.durable.live.delete(this.taskId(env)); // it stays pending in the journal for the next start
  }

  private wall(): number {
    return this.journalClock();
  }

  private finish(env: Envelope, status: Outcome['status'], output: unknown, error: (ErrorInfo & { code: string }) | undefined, stage: string, attempts: number): void {
    this.pending--;
    if (status === 'completed') this.completed++;
    else this.deadLettered++;
    if (env.id !== undefined) {
      this.pendingIds.delete(env.id);
      this.durable?.live.delete(env.id);
    }
    if (this.feed.listening) {
      const errors = env.fan?.dead?.errors ?? env.errors ?? [];
      this.feed.emit({ id: this.taskId(env), key: env.key, status, ...(output !== undefined ? { output: output as O } : {}), ...(error ? { error } : {}), errors, stage, attempts });
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
