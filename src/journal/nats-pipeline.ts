import type { KV } from '@nats-io/kv';
import { decode, encode } from '../codec.js';
import { BatonError, toErrorInfo } from '../errors.js';
import type { JournalOp, PipelineJournal, StoredOutcome, StoredTask, TaskStatus } from './journal.js';
import { MemoryPipelineJournal, type TaskRecord } from './memory.js';

/** Keys are `<pipeline>.t.<task id>` and `<pipeline>.r.<stage>`, each part base64url (KV keys allow few characters). */
const token = (s: string): string => (s === '' ? '=' : Buffer.from(s, 'utf8').toString('base64url'));
const untoken = (t: string): string => (t === '=' ? '' : Buffer.from(t, 'base64url').toString('utf8'));

/** A stored value of a task key. */
type StoredRecord = [seq: number, key: string | null, stage: string, status: TaskStatus, attempts: number, payload: Uint8Array | null, errors: Uint8Array | null, code: string | null, finishedAt: number];

/** Takes one key of the bucket, as the journal loads it, into the pipeline it belongs to. */
export function loadEntry(part: (name: string) => NatsPipelineJournal, key: string, revision: number, value: Uint8Array | undefined): void {
  const [p, kind, rest] = key.split('.');
  if (p === undefined || rest === undefined || (kind !== 't' && kind !== 'r' && kind !== 's')) return; // not Baton's: left alone
  const pipeline = part(untoken(p));
  pipeline.restore(kind, untoken(rest), revision, value, key);
}

/**
 * One pipeline's part of a NATS journal: the memory journal's state answers every read; commits,
 * releaseRunning and pruneCompleted also write what they changed to the bucket, one after another.
 */
export class NatsPipelineJournal implements PipelineJournal {
  private readonly mem: MemoryPipelineJournal;
  /** The revision of each key this process last read or wrote: every write is conditional on it. */
  private readonly revisions = new Map<string, number>();
  private readonly prefix: string;
  /** The writes in order: each waits for the one before (revisions must be known). */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown = undefined;

  constructor(
    readonly name: string,
    private readonly kv: KV,
    /** How long one write may take, retries across a reconnect included. */
    private readonly timeoutMs: number,
  ) {
    this.mem = new MemoryPipelineJournal(name);
    this.prefix = token(name);
  }

  /** How many tasks of this pipeline the bucket holds (pending, completed until pruned, dead). */
  size(): number {
    return this.mem.size();
  }

  /** Loading: one stored key. */
  restore(kind: 't' | 'r' | 's', id: string, revision: number, value: Uint8Array | undefined, key: string): void {
    this.revisions.set(key, revision);
    if (value === undefined) return; // deleted or purged: the revision is what a later write builds on
    let v: unknown;
    try {
      v = decode(value);
    } catch (err) {
      throw corrupt(key, err);
    }
    if (kind === 's') {
      if (typeof v !== 'string') throw corrupt(key, 'not a state value');
      this.mem.restoreState(id, v);
      return;
    }
    if (kind === 'r') {
      if (!Array.isArray(v) || !Array.isArray(v[0])) throw corrupt(key, 'not a list of runs');
      this.mem.restoreRunning(id, (v[0] as unknown[]).map(String), v[1] === true);
      return;
    }
    if (!Array.isArray(v) || v.length !== 9 || typeof v[0] !== 'number' || typeof v[2] !== 'string') throw corrupt(key, 'not a task record');
    const [seq, k, stage, status, attempts, payload, errors, code, finishedAt] = v as StoredRecord;
    this.mem.restore({ id, seq, key: k ?? undefined, stage, status, attempts, payload: payload ?? undefined, errors: errors ?? undefined, code: code ?? undefined, finishedAt });
  }

  /** Resolves when every write so far has been answered (close waits for it). */
  settled(): Promise<void> {
    return this.tail.catch(() => undefined);
  }

  lastSeq(): number {
    return this.mem.lastSeq();
  }
  status(id: string): TaskStatus | undefined {
    return this.mem.status(id);
  }
  task(id: string): StoredTask | undefined {
    return this.mem.task(id);
  }
  pendingAt(stage: string, afterSeq: number, upToSeq: number, limit: number): StoredTask[] {
    return this.mem.pendingAt(stage, afterSeq, upToSeq, limit);
  }
  pendingStages(): Map<string, { count: number; maxSeq: number }> {
    return this.mem.pendingStages();
  }
  runningAtCrash(): Map<string, { ids: Set<string>; isolated: boolean }> {
    return this.mem.runningAtCrash();
  }
  recovered(): void {}
  outcome(id: string): StoredOutcome | undefined {
    return this.mem.outcome(id);
  }
  deadLetters(limit: number, offset: number): StoredOutcome[] {
    return this.mem.deadLetters(limit, offset);
  }
  counts(): { pending: number; completed: number; dead: number } {
    return this.mem.counts();
  }

  /**
   * Applies the ops to the state at once (reads see them), then writes every key they touched, in
   * flight together; resolves when all are acknowledged. A task's ops of one commit become one write
   * of its final record, so a task's own changes are atomic; a commit as a whole is not (JetStream
   * 2.9 has no multi-key transaction), which the runtime tolerates: it acts on a commit only once it
   * resolved, so a process that dies mid-commit had started nothing the missing writes would record.
   */
  /** The bucket's name when it was opened read-only (natsJetStream({ readonly: true })): every write is refused. */
  readonly: string | undefined = undefined;

  private refuseWrite(): BatonError {
    return new BatonError('ERR_JOURNAL_READONLY', `the NATS journal bucket '${this.readonly}' was opened read-only; open it without readonly to write (replay and cancel go through the running system: pipeline.replay(ids), pipeline.cancel(id)).`, { bucket: this.readonly });
  }

  commit(ops: readonly JournalOp[]): Promise<void> {
    if (this.readonly !== undefined) throw this.refuseWrite();
    this.mem.commit(ops);
    const { ids, stages, states } = MemoryPipelineJournal.touched(ops);
    const writes: [string, Uint8Array][] = [];
    const purges: string[] = [];
    for (const id of ids) {
      const r = this.mem.record(id);
      if (r !== undefined) writes.push([this.taskKey(id), this.encodeTask(r)]);
      // Gone from the state: a dropped task. Its key is purged if it was ever written.
      else if (this.revisions.has(this.taskKey(id))) purges.push(this.taskKey(id));
    }
    for (const stage of stages) writes.push([this.runningKey(stage), this.encodeRunning(stage)]);
    for (const key of states) {
      const value = this.mem.state(key);
      if (value === undefined) purges.push(this.stateKey(key));
      else writes.push([this.stateKey(key), encode(value, 'journal state')]);
    }
    return this.enqueue(() => this.writeAll(writes, purges));
  }

  releaseRunning(): void {
    if (this.readonly !== undefined) throw this.refuseWrite();
    const stages = this.mem.runningStages();
    this.mem.releaseRunning();
    if (stages.length === 0) return;
    const writes = stages.map((s): [string, Uint8Array] => [this.runningKey(s), this.encodeRunning(s)]);
    void this.enqueue(() => this.writeAll(writes, [])).catch(() => undefined);
  }

  pruneCompleted(before: number): Promise<number> {
    if (this.readonly !== undefined) throw this.refuseWrite();
    const ids = this.mem.completedBefore(before);
    const n = this.mem.pruneCompleted(before);
    return this.enqueue(() => this.writeAll([], ids.map((id) => this.taskKey(id)))).then(() => n);
  }

  private enqueue(write: () => Promise<void>): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const next = this.tail.then(write);
    this.tail = next.catch((err) => {
      this.failure ??= err;
    });
    return next;
  }

  private async writeAll(puts: readonly [string, Uint8Array][], purges: readonly string[]): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const results = await Promise.allSettled([...puts.map(([key, bytes]) => this.write(key, bytes)), ...purges.map((key) => this.write(key, undefined))]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Writes (or, with undefined, purges) one key, conditional on the revision last seen. A write whose
   * answer is lost (the server restarted, the connection dropped) is sent again until `timeoutMs` has
   * passed; if the first one had landed after all, the retry meets a "wrong last sequence", and the key
   * then holds exactly these bytes: that is our own write, not a conflict.
   */
  private async write(key: string, bytes: Uint8Array | undefined): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const rev = this.revisions.get(key);
      const left = Math.max(1, deadline - Date.now());
      try {
        if (bytes === undefined) {
          await this.kv.purge(key, rev === undefined ? {} : { previousSeq: rev });
          this.revisions.delete(key);
        } else {
          this.revisions.set(key, rev === undefined ? await this.kv.create(key, bytes) : await this.kv.update(key, bytes, rev, Math.min(left, 5_000)));
        }
        return;
      } catch (err) {
        if (isConflict(err)) {
          if (await this.isOurs(key, bytes)) return;
          throw this.writeError(key, err, true);
        }
        if (Date.now() >= deadline) throw this.writeError(key, err, false);
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** Math.min(attempt, 5), Math.max(1, deadline - Date.now()))));
      }
    }
  }

  /** After a conflict: whether the key already holds what we meant to write (a retried write that had landed). */
  private async isOurs(key: string, bytes: Uint8Array | undefined): Promise<boolean> {
    try {
      const e = await this.kv.get(key);
      if (e === null) return false;
      const ours = bytes === undefined ? e.operation === 'PURGE' : e.operation === 'PUT' && Buffer.from(e.value).equals(Buffer.from(bytes));
      if (!ours) return false;
      if (bytes === undefined) this.revisions.delete(key);
      else this.revisions.set(key, e.revision);
      return true;
    } catch {
      return false;
    }
  }

  private writeError(key: string, err: unknown, conflict: boolean): BatonError {
    const message = toErrorInfo(err).message;
    if (conflict) {
      return new BatonError(
        'ERR_TRANSPORT_CONFLICT',
        `pipeline '${this.name}': another process wrote its task key '${key}' in the NATS bucket (${message}). One process writes a pipeline at a time: stop the other, then spawn the pipeline again here.`,
        { pipeline: this.name, key },
        err,
      );
    }
    return new BatonError('ERR_TRANSPORT_FAILED', `pipeline '${this.name}': the NATS server did not acknowledge a write of '${key}' within ${this.timeoutMs} ms (${message}); the pipeline stops, and what it accepted is still in the bucket for the next start.`, { pipeline: this.name, key }, err);
  }

  private taskKey(id: string): string {
    return `${this.prefix}.t.${token(id)}`;
  }
  private runningKey(stage: string): string {
    return `${this.prefix}.r.${token(stage)}`;
  }
  private stateKey(key: string): string {
    return `${this.prefix}.s.${token(key)}`;
  }

  state(key: string): string | undefined {
    return this.mem.state(key);
  }
  private encodeTask(r: Readonly<TaskRecord>): Uint8Array {
    const v: StoredRecord = [r.seq, r.key ?? null, r.stage, r.status, r.attempts, r.payload ?? null, r.errors ?? null, r.code ?? null, r.finishedAt];
    return encode(v, `task ${r.id}`);
  }
  private encodeRunning(stage: string): Uint8Array {
    const r = this.mem.runningAt(stage);
    return encode([r?.ids ?? [], r?.isolated ?? false], `runs of stage ${stage}`);
  }
}

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test(toErrorInfo(err).message);
}

function corrupt(key: string, why: unknown): BatonError {
  const detail = typeof why === 'string' ? why : toErrorInfo(why).message;
  return new BatonError('ERR_JOURNAL_CORRUPT', `the NATS bucket's key '${key}' is not a Baton record (${detail}); delete the key (nats kv del <bucket> <key>) or use another bucket.`, { key }, why);
}
