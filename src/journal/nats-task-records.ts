import type { KV } from '@nats-io/kv';
import { toErrorInfo } from '../errors.js';
import { token } from './nats-names.js';

/**
 * How long the `<bucket>_tries` bucket keeps a task's charged attempts: 7 days. Its key is dropped when
 * the task moves on; one left by a process that died after the move but before the drop is a few
 * bytes that can do no harm (it names the message it is about: see KeptAttempts), and the bucket forgets it then. A task
 * still waiting for its retry after 7 days (a breaker held that long) forgets its attempts if its
 * process dies: it gets maxAttempts more.
 */
export const TRIES_TTL_MS = 7 * 24 * 3_600_000;

/**
 * One distributed pipeline's keys in the KV buckets beside its streams (see NatsWire): the join
 * record of each fanned-out task (`<bucket>_fan`, `<p>.<id>`) and the attempts a task was charged at
 * a stage (`<bucket>_tries`, `<p>.<stage>.<id>`). Both are written by whichever process holds the
 * task, and read by the next one: the server keeps them, no process does.
 */
export class TaskRecords {
  constructor(
    private readonly wire: { readonly joins: () => Promise<KV>; readonly tries: () => Promise<KV> },
    /** The pipeline's name as a token. */
    private readonly p: string,
  ) {}

  /**
   * The join record of fanned-out task `id`: made by the first process to fan it out (a process that
   * does it again after a crash finds it, and its record wins). Resolves the record that holds.
   */
  async joinCreate(id: string, rec: Uint8Array): Promise<Uint8Array> {
    const key = this.joinKey(id);
    const kv = await this.wire.joins();
    try {
      await kv.create(key, rec);
      return rec;
    } catch (err) {
      const e = await kv.get(key);
      if (e === null || e.operation !== 'PUT') throw err;
      return e.value;
    }
  }

  /**
   * Changes the join record of task `id` with `change` (given the record, it answers the new one, or
   * undefined to leave it), conditional on its revision, again after a conflict with another process.
   * Resolves what `change` answered last, and undefined if there is no record (the task has ended).
   */
  async joinUpdate<T>(id: string, change: (rec: Uint8Array) => { next: Uint8Array | undefined; result: T }): Promise<T | undefined> {
    const key = this.joinKey(id);
    const kv = await this.wire.joins();
    for (;;) {
      const e = await kv.get(key);
      if (e === null || e.operation !== 'PUT') return undefined;
      const { next, result } = change(e.value);
      if (next === undefined) return result;
      try {
        await kv.update(key, next, e.revision);
        return result;
      } catch (err) {
        if (!/wrong last sequence/i.test(toErrorInfo(err).message)) throw err;
        // another process ended a branch of the same task first: read again
      }
    }
  }

  /** Forgets the join record of task `id` (its outcome is published). */
  async joinDelete(id: string): Promise<void> {
    await (await this.wire.joins()).purge(this.joinKey(id));
  }

  private joinKey(id: string): string {
    return `${this.p}.${token(id)}`;
  }

  /** Keeps what task `id` went through at `stage` (msgpack; see KeptAttempts) for the next process. */
  async saveTries(stage: string, id: string, rec: Uint8Array): Promise<void> {
    await (await this.wire.tries()).put(this.triesKey(stage, id), rec);
  }

  /** What a process charged task `id` at `stage`, or undefined. */
  async loadTries(stage: string, id: string): Promise<Uint8Array | undefined> {
    const e = await (await this.wire.tries()).get(this.triesKey(stage, id));
    return e === null || e.operation !== 'PUT' ? undefined : e.value;
  }

  /** Task `id` left `stage`: its charged attempts there are no longer anyone's. */
  async forgetTries(stage: string, id: string): Promise<void> {
    await (await this.wire.tries()).purge(this.triesKey(stage, id));
  }

  private triesKey(stage: string, id: string): string {
    return `${this.p}.${token(stage)}.${token(id)}`;
  }
}
