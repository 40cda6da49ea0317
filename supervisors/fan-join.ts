import { Envelope, type AttemptError, type FanOut } from '../actors/envelope.js';
import { decode, encode } from '../src/codec.js';
import { branchId, branchOf, encodeJoin, FAN_STAGE, readJoin, type BranchEnd } from './join-record.js';
import { BatonError, toErrorInfo, type ErrorInfo } from '../src/errors.js';
import { isLater, type StoredTask } from '../src/journal/journal.js';
import type { DurableLog } from './durable-log.js';

/**
 * Fan-out with a journal. A task that a route sends to several stages becomes, in one commit:
 * - its own row, moved to the stage `~fan-out` (a name no stage can have), holding the join record:
 *   where it fanned out, the stages, the input every branch got, and each branch's end so far;
 * - one pending row per branch, `<id>#fan<i>` at stage i, with the input as its payload and a seq of its own.
 * A branch is an ordinary task to its stages (retries, breaker, key order, recovery). When one ends,
 * its row is dropped and its end goes into the join record in the same commit; the last one ends the
 * task: completed with every branch's `{ stage, output }` (in the order they ended), or dead-lettered
 * at `~fan-out` with the first dead branch's code and history. A replay of that dead letter runs the
 * dead branches again and keeps the outputs of those that completed.
 * A backend that cannot commit several rows atomically (NATS) may lose part of a commit in a crash:
 * recovery re-creates a branch that has neither a row nor an end, finishes a join whose branches have
 * all ended, and drops a branch row whose end is already recorded. Without a journal, fan-out is
 * joined in memory (TaskLedger) and none of this exists.
 */
/** A fanned-out task's join, in memory (the record, decoded) and in the journal (its row at FAN_STAGE). */
interface Join {
  readonly parent: Envelope;
  readonly from: string;
  readonly to: readonly string[];
  readonly input: Uint8Array;
  readonly ended: BranchEnd[];
  /** Every branch's envelope shares this object (Envelope.fan); `join` marks it as journaled. */
  readonly fan: FanOut;
}

/** What the joins need from their pipeline. */
export interface JoinHost {
  taskId(env: Envelope): string;
  /** Hands a branch to its stage, taken in beyond the inbox's bound like a replayed task (or dead-letters it if the stage is gone). */
  deliver(stage: string, env: Envelope): void;
  /** The task's joined output is ready: record and report its completion (env.bytes holds it encoded). */
  completeTask(parent: Envelope, output: unknown, stage: string, attempts: number): void;
  /** A branch was dead-lettered and every other branch has ended: record and report the task's dead letter. */
  deadLetterTask(parent: Envelope, stage: string, code: string, error: ErrorInfo, attempts: number): void;
  /** A branch row counted as pending at recovery turned out not to be a task of its own. */
  uncount(n: number): void;
  /** A new seq from the pipeline's counter (each branch has its own: two may meet at one stage). */
  nextSeq(): number;
}

/** The journaled joins of one pipeline: see FAN_STAGE. Owns the joins with a branch in memory. */
export class FanJoins {
  private readonly joins = new Map<string, Join>();

  constructor(
    private readonly durable: DurableLog,
    private readonly host: JoinHost,
  ) {}

  /**
   * Records that `env` fans out from stage `from` to `to` (names checked by the caller) with its
   * output (encoded in env.bytes), and returns the branches, in `to`'s order, for the caller to hand on.
   */
  split(env: Envelope, from: string, to: readonly string[], output: unknown): Envelope[] {
    const input = env.bytes!;
    env.bytes = undefined;
    const join = this.track(env, from, to, input, []);
    this.saveJoin(join);
    return to.map((stage, i) => this.makeBranch(join, i, stage, output));
  }

  /** A branch completed with `output` (env.bytes holds it encoded). Returns false if `env` is not a journaled branch. */
  completed(env: Envelope, output: unknown, stage: string, attempts: number): boolean {
    const join = this.joinOf(env);
    if (join === undefined) return false;
    join.fan.outputs.push({ stage, output });
    this.ended(join, env, [this.indexOf(env), stage, 1, env.bytes!], attempts, stage);
    env.bytes = undefined;
    return true;
  }

  /** A branch was dead-lettered (its history ends with what ended it). Returns false if `env` is not a journaled branch. */
  deadLettered(env: Envelope, stage: string, code: string, attempts: number): boolean {
    const join = this.joinOf(env);
    if (join === undefined) return false;
    this.ended(join, env, [this.indexOf(env), stage, 0, code, this.durable.encodeErrors(env.errors), attempts], attempts, stage);
    return true;
  }

  /**
   * A task recovered from the journal (paged in, at a stage that is gone, or cancelled there): if it
   * is a branch, ties it to its join (loaded from the parent's row) and returns true; returns false
   * if it must not run: a branch whose parent has ended or whose end is already recorded (it is dropped).
   * Anything else returns true untouched.
   */
  adoptRecovered(env: Envelope): boolean {
    const branch = branchOf(env.id);
    if (branch === undefined) return true;
    this.host.uncount(1); // counted as pending at recovery; only its parent is a task
    const join = this.load(branch.parent);
    const i = branch.index;
    if (join === undefined || join.ended.some((e) => e[0] === i) || i >= join.to.length) {
      this.durable.push({ op: 'drop', id: env.id! });
      return false;
    }
    env.fan = join.fan;
    return true;
  }

  /**
   * Recovery: the tasks at FAN_STAGE. Finishes joins whose branches have all ended, re-creates a
   * branch with neither a row nor an end (a partial commit), and dead-letters a task whose join
   * record cannot be read (ERR_JOURNAL_CORRUPT). `deadLetter` ends a corrupt one.
   */
  recover(upTo: number, deadLetter: (env: Envelope, code: string, error: ErrorInfo) => void, after = 0): void {
    const rows = this.durable.journal.pendingAt(FAN_STAGE, after, upTo, 1000);
    const take = (page: StoredTask[]): void => {
      for (const row of page) this.recoverOne(row, deadLetter);
      if (page.length === 1000) this.recover(upTo, deadLetter, page[page.length - 1]!.seq);
    };
    if (isLater(rows)) rows.then(take, (err: unknown) => this.durable.failWith(err));
    else take(rows);
  }

  /** The ids a cancel of `id` must reach: its branches still pending if it fanned out, else itself. */
  idsToCancel(id: string): string[] {
    const join = this.load(id);
    if (join === undefined) return [id];
    return join.to.map((_, i) => branchId(id, i)).filter((_, i) => !join.ended.some((e) => e[0] === i));
  }

  /**
   * A replay of a fanned-out task's dead letter (already made pending again): its dead branches run
   * again from their input; the outputs of those that completed are kept. Returns how many branches
   * were handed on (0: not a join record; the caller handles it as an ordinary task).
   */
  replay(row: StoredTask): number {
    const rec = readJoin(row.payload);
    if (rec === undefined) return 0;
    const parent = this.parentEnvelope(row);
    const ended = rec.ended.filter((e) => e[2] === 1);
    const join = this.track(parent, rec.from, rec.to, rec.input, ended);
    for (const e of ended) join.fan.outputs.push({ stage: e[1], output: decode((e as [number, string, 1, Uint8Array])[3]) });
    this.saveJoin(join);
    const output = decode(rec.input);
    let n = 0;
    rec.to.forEach((stage, i) => {
      if (ended.some((e) => e[0] === i)) return;
      this.host.deliver(stage, this.makeBranch(join, i, stage, output));
      n++;
    });
    return n;
  }

  // ---- parts ----------------------------------------------------------------------------------

  private track(parent: Envelope, from: string, to: readonly string[], input: Uint8Array, ended: BranchEnd[]): Join {
    const fan: FanOut = { open: to.length - ended.length, outputs: [], dead: undefined, journaled: true };
    const join: Join = { parent, from, to, input, ended, fan };
    this.joins.set(this.host.taskId(parent), join);
    return join;
  }

  private makeBranch(join: Join, i: number, stage: string, output: unknown): Envelope {
    const parent = join.parent;
    const id = branchId(this.host.taskId(parent), i);
    // A seq of its own, not its parent's: routes can bring two branches of a task to one stage, and a
    // backlog pages by seq (a second row with the same seq was skipped: found by the fault-plan property).
    const b = new Envelope(id, this.host.nextSeq(), parent.key, output);
    if (parent.errors !== undefined) b.errors = parent.errors.slice();
    b.fan = join.fan;
    this.durable.push({ op: 'accept', id, seq: b.seq, key: parent.key, stage, payload: join.input });
    this.durable.live.add(id);
    return b;
  }

  private saveJoin(join: Join): void {
    this.durable.push({ op: 'move', id: this.host.taskId(join.parent), stage: FAN_STAGE, payload: encodeJoin(join) });
  }

  private joinOf(env: Envelope): Join | undefined {
    if (env.fan?.journaled !== true) return undefined;
    const branch = branchOf(env.id);
    return branch === undefined ? undefined : this.joins.get(branch.parent);
  }

  private indexOf(env: Envelope): number {
    return branchOf(env.id)!.index;
  }

  /** Branch `end` ended: drop its row; the join record gets its end, or the task ends with the last one. */
  private ended(join: Join, env: Envelope, end: BranchEnd, attempts: number, stage: string): void {
    const id = env.id!;
    this.durable.push({ op: 'drop', id });
    // Held until the drop is committed: a recovered backlog that reaches its row before then (it may
    // have moved into a stage whose backlog is still paging) must skip it, not adopt it again.
    this.durable.afterCommit(() => this.durable.live.delete(id));
    join.ended.push(end);
    join.fan.open--;
    if (join.fan.open > 0) return this.saveJoin(join);
    this.finish(join, attempts, stage);
  }

  /** Every branch has ended: the task completes with their outputs, or is dead-lettered with the first dead branch's error. */
  private finish(join: Join, attempts: number, stage: string): void {
    const parentId = this.host.taskId(join.parent);
    this.joins.delete(parentId);
    const dead = join.ended.find((e): e is Extract<BranchEnd, { 2: 0 }> => e[2] === 0);
    if (dead === undefined) {
      const outputs = join.fan.outputs;
      join.parent.bytes = encode(outputs, `the joined outputs of task ${parentId}`);
      return this.host.completeTask(join.parent, outputs, stage, attempts);
    }
    // The record keeps every branch's end, so a replay knows which ones to run again.
    this.saveJoin(join);
    let history: AttemptError[] = [];
    try {
      history = decode<AttemptError[]>(dead[4]);
    } catch {
      // written by this process a moment ago or read from a record that decoded: not expected to fail
    }
    join.parent.errors = history;
    const last = history[history.length - 1]?.error ?? { name: 'Error', message: `branch ${dead[0]} (stage '${dead[1]}') was dead-lettered` };
    this.host.deadLetterTask(join.parent, FAN_STAGE, dead[3], last, dead[5]);
  }

  /** The join of task `parentId`: in memory, or read from its row at FAN_STAGE; undefined if it has none. */
  private load(parentId: string): Join | undefined {
    const known = this.joins.get(parentId);
    if (known !== undefined) return known;
    const row = this.durable.journal.task(parentId);
    if (row === undefined || row.stage !== FAN_STAGE) return undefined;
    const rec = readJoin(row.payload);
    if (rec === undefined) return undefined;
    const join = this.track(this.parentEnvelope(row), rec.from, rec.to, rec.input, rec.ended);
    for (const e of rec.ended) if (e[2] === 1) join.fan.outputs.push({ stage: e[1], output: decode(e[3]) });
    return join;
  }

  private parentEnvelope(row: StoredTask): Envelope {
    const parent = new Envelope(row.id, row.seq, row.key, undefined);
    if (row.errors !== undefined) {
      try {
        parent.errors = decode<AttemptError[]>(row.errors);
      } catch {
        // a history that does not decode is left out; the branches' own histories still say what happened
      }
    }
    this.durable.live.add(row.id);
    return parent;
  }

  private recoverOne(row: StoredTask, deadLetter: (env: Envelope, code: string, error: ErrorInfo) => void): void {
    const join = this.load(row.id);
    if (join === undefined) {
      const env = this.parentEnvelope(row);
      const error = new BatonError('ERR_JOURNAL_CORRUPT', `the journal's fan-out record of task ${row.id} cannot be read; its raw bytes are left in the journal row, and its branches are dropped as they page in.`, { taskId: row.id });
      return deadLetter(env, error.code, toErrorInfo(error));
    }
    if (join.fan.open === 0) return this.finish(join, 1, join.ended[join.ended.length - 1]?.[1] ?? join.from);
    const output = decode(join.input);
    join.to.forEach((stage, i) => {
      const id = branchId(row.id, i);
      if (join.ended.some((e) => e[0] === i) || this.durable.journal.status(id) !== undefined) return;
      // Neither a row nor an end: lost with a partial commit. It runs again from its input.
      this.host.deliver(stage, this.makeBranch(join, i, stage, output));
    });
  }
}
