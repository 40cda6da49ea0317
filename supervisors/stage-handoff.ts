import type { Envelope } from '../actors/envelope.js';
import { BatonError, toErrorInfo } from '../src/errors.js';
import { RingBuffer } from '../src/ring-buffer.js';
import type { StageCounts, StageHost, StageInbox } from './stage-host.js';
import type { StageStore } from './stage-store.js';

/**
 * Where a stage's successes go: to the next stage in the list, to a stage a route named, to several
 * (fan-out: the branches are joined into one outcome by the pipeline; with a journal see
 * fan-join.ts), or to their outcome. Owns:
 * `next` and the outbox, the outputs waiting (in completion order) for room in a full downstream
 * inbox. While the outbox holds anything the stage takes no new work (back-pressure travels up to
 * `send`) and the outbox is flushed, in order, before anything else runs.
 */
export class StageHandoff {
  /** The stage a task goes to after this one, unless the agent routes; null after the last. */
  next: StageInbox | null = null;
  /** Outputs waiting for room downstream; 0 on the hot path. */
  outCount = 0;
  /** Read once: the in-memory hot path checks it per handoff. */
  private readonly journaled: boolean;
  private out: { readonly envs: RingBuffer<Envelope>; readonly to: RingBuffer<StageInbox> } | undefined = undefined;

  constructor(
    private readonly path: string,
    private readonly name: string,
    private readonly host: StageHost,
    private readonly store: StageStore,
    private readonly counts: StageCounts,
    /** Its stage: `wake` schedules it (a downstream inbox calls it when room appears). */
    private readonly stage: { readonly wake: () => void },
  ) {
    this.journaled = store.journaled;
  }

  /** To the next stage in the list, or complete after the last. */
  handOn(env: Envelope, output: unknown, attempts: number): void {
    const next = this.next;
    if (next === null) this.host.complete(env, output, this.name, attempts);
    else if (!this.journaled && this.outCount === 0 && next.inbox.hasRoom()) next.enqueue(env);
    else this.handoff(env, next);
  }

  /** Where a route sent the task: null completes it, a name hands it there, several fan it out. */
  routed(env: Envelope, dest: string | readonly string[] | null, output: unknown, attempts: number): void {
    if (dest === null) this.host.complete(env, output, this.name, attempts);
    else if (typeof dest === 'string') this.routeTo(env, dest);
    else this.fanOut(env, dest, output);
  }

  private routeTo(env: Envelope, name: string): void {
    const to = this.host.stageNamed(name);
    if (to === undefined) this.unknownRoute(env, name);
    else this.handoff(env, to);
  }

  private fanOut(env: Envelope, names: readonly string[], output: unknown): void {
    if (names.length === 0) return this.host.complete(env, output, this.name, 1);
    if (names.length === 1) return this.routeTo(env, names[0]!);
    if (this.journaled) return this.fanOutJournaled(env, names, output);
    env.fan ??= { open: 1, outputs: [], dead: undefined };
    env.fan.open += names.length - 1;
    names.forEach((name, i) => this.routeTo(i === 0 ? env : env.branch(output), name));
  }

  /**
   * With a journal each branch is a task of its own in it (supervisors/fan-join.ts), so the whole
   * route is checked first: a stage it does not have, a stage named twice, or a branch fanning out
   * again dead-letters the task before any branch runs.
   */
  private fanOutJournaled(env: Envelope, names: readonly string[], output: unknown): void {
    const unknown = names.find((n) => this.host.stageNamed(n) === undefined);
    if (unknown !== undefined) return this.unknownRoute(env, unknown);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    const why =
      twice !== undefined ? `names stage '${twice}' twice; with a journal each stage takes one branch of a task`
      : env.fan !== undefined ? 'is itself a branch of a fanned-out task; with a journal a branch routes to one stage (or null)'
      : undefined;
    const branches = why === undefined ? this.host.fanOut(env, this.name, names, output) : new BatonError('ERR_INVALID_OPTION', `the route of stage '${this.path}' sent task ${this.host.taskId(env)} to ${names.length} stages, but it ${why}.`, { stage: this.path });
    if (branches instanceof BatonError) {
      this.counts.deadLettered++;
      this.host.deadLetter(env, this.name, branches.code, toErrorInfo(branches), 1);
      return;
    }
    branches.forEach((b, i) => this.deliver(b, this.host.stageNamed(names[i]!)!));
  }

  private unknownRoute(env: Envelope, name: string): void {
    const err = new BatonError(
      'ERR_UNKNOWN_ADDRESS',
      `stage '${this.path}' routed task ${this.host.taskId(env)} to '${name}', which is not a stage of this pipeline; return one of its stage names, an array of them, or null to complete the task.`,
      { stage: this.path, address: name },
    );
    this.counts.deadLettered++;
    this.host.deadLetter(env, this.name, err.code, toErrorInfo(err), 1);
  }

  private handoff(env: Envelope, to: StageInbox): void {
    if (this.journaled) this.store.recordMove(this.host.taskId(env), env, to.name);
    this.deliver(env, to);
  }

  /** Into `to`'s inbox, or the outbox while it is full (or while earlier outputs wait there). */
  private deliver(env: Envelope, to: StageInbox): void {
    if (this.outCount === 0 && to.inbox.hasRoom()) {
      to.enqueue(env);
      return;
    }
    if (this.outCount === 0) to.inbox.onRoom(this.stage.wake);
    this.out ??= { envs: new RingBuffer<Envelope>(4), to: new RingBuffer<StageInbox>(4) };
    this.out.envs.push(env);
    this.out.to.push(to);
    this.outCount++;
  }

  /** Hands on outputs that waited for room; false while the next inbox is still full. */
  flush(): boolean {
    const out = this.out!;
    while (this.outCount > 0) {
      const to = out.to.peek()!;
      if (!to.inbox.hasRoom() && !to.terminated) {
        to.inbox.onRoom(this.stage.wake);
        return false;
      }
      out.to.shift();
      this.outCount--;
      to.enqueue(out.envs.shift()!);
    }
    return true;
  }

  /** Takes a task waiting in the outbox out (a cancel); undefined if none matches. */
  remove(pred: (env: Envelope) => boolean): Envelope | undefined {
    const out = this.out;
    if (out === undefined || this.outCount === 0) return undefined;
    const envs = out.envs.clear();
    const to = out.to.clear();
    let found: Envelope | undefined;
    envs.forEach((env, i) => {
      if (found === undefined && pred(env)) found = env;
      else {
        out.envs.push(env);
        out.to.push(to[i]!);
      }
    });
    if (found !== undefined) this.outCount--;
    return found;
  }

  /** Empties the outbox (the stage ends): its tasks are returned to be accounted for. */
  clear(): Envelope[] {
    const left = this.out?.envs.clear() ?? [];
    this.out?.to.clear();
    this.outCount = 0;
    return left;
  }
}
