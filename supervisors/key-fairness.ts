import type { Envelope } from '../actors/envelope.js';
import { RingBuffer } from '../src/ring-buffer.js';

/** Tasks without a key share one turn in the rotation, and no per-key limit. */
const NO_KEY = Symbol('no key');
type Key = string | typeof NO_KEY;

/**
 * Fair turns between keys (tenants) at one stage: at most `limit` tasks of a key in progress here
 * (running, or waiting for a retry) and, among keys that may start one, a round-robin. Tasks leave
 * the inbox into a queue per key but still count against the inbox's bound (`hold`), so a tenant's
 * 10,000 tasks wait in the same bounded room as before; they just no longer stand in front of
 * another tenant's 10. With K keys waiting and concurrency C, a key's first task starts within
 * ceil(K / C) rounds of starts (test/properties/fairness.test.ts).
 * Owns: the per-key queues, the rotation of keys with waiting tasks, and the count in progress per key.
 */
export class KeyFairness {
  private readonly queues = new Map<Key, RingBuffer<Envelope>>();
  /** Keys with waiting tasks, in turn order; `turn` is where the next search starts. */
  private readonly rotation: Key[] = [];
  private turn = 0;
  private readonly inProgress = new Map<Key, number>();
  /** Tasks waiting in the per-key queues. */
  waiting = 0;

  constructor(
    readonly limit: number,
    private readonly bound: { shift(): Envelope | undefined; hold(): void; unhold(): void },
  ) {}

  /** Moves what waits in the inbox into the per-key queues (each keeps its slot of the bound). */
  private absorb(): void {
    for (let env = this.bound.shift(); env !== undefined; env = this.bound.shift()) {
      this.bound.hold();
      const key: Key = env.key ?? NO_KEY;
      let q = this.queues.get(key);
      if (q === undefined) {
        this.queues.set(key, (q = new RingBuffer<Envelope>(4)));
        this.rotation.push(key);
      }
      q.push(env);
      this.waiting++;
    }
  }

  /** The next task by turn, from a key below its limit; undefined if none may start. Its slot is freed. */
  take(): Envelope | undefined {
    this.absorb();
    const n = this.rotation.length;
    for (let i = 0; i < n; i++) {
      const at = (this.turn + i) % n;
      const key = this.rotation[at]!;
      if (key !== NO_KEY && (this.inProgress.get(key) ?? 0) >= this.limit) continue;
      const q = this.queues.get(key)!;
      const env = q.shift()!;
      this.waiting--;
      this.bound.unhold();
      this.started(env);
      if (q.length === 0) {
        this.queues.delete(key);
        this.rotation.splice(at, 1);
        this.turn = n - 1 === 0 ? 0 : at % (n - 1);
      } else this.turn = (at + 1) % n;
      return env;
    }
    return undefined;
  }

  /** Whether a task could be taken now (a key below its limit has one waiting), the inbox included. */
  runnable(inboxLength: number): boolean {
    if (inboxLength > 0) return true;
    for (const key of this.rotation) if (key === NO_KEY || (this.inProgress.get(key) ?? 0) < this.limit) return true;
    return false;
  }

  /** A task of its key is in progress here (taken by turn, or from `ready`). */
  started(env: Envelope): void {
    if (env.key === undefined) return;
    this.inProgress.set(env.key, (this.inProgress.get(env.key) ?? 0) + 1);
  }

  /** A task left the stage (handed on, dead-lettered, cancelled): its key may start another. */
  released(env: Envelope): void {
    if (env.key === undefined) return;
    const n = (this.inProgress.get(env.key) ?? 0) - 1;
    if (n <= 0) this.inProgress.delete(env.key);
    else this.inProgress.set(env.key, n);
  }

  /** Takes a waiting task out (a cancel); undefined if none matches. */
  remove(pred: (env: Envelope) => boolean): Envelope | undefined {
    for (const [key, q] of this.queues) {
      const env = q.removeFirst(pred);
      if (env === undefined) continue;
      this.waiting--;
      this.bound.unhold();
      if (q.length === 0) {
        this.queues.delete(key);
        const at = this.rotation.indexOf(key);
        this.rotation.splice(at, 1);
        if (this.turn > at) this.turn--;
        if (this.turn >= this.rotation.length) this.turn = 0;
      }
      return env;
    }
    return undefined;
  }

  /** Empties the queues (the stage ends); their tasks are returned, their slots freed. */
  clear(): Envelope[] {
    const out: Envelope[] = [];
    for (const key of this.rotation) out.push(...this.queues.get(key)!.clear());
    for (let i = 0; i < out.length; i++) this.bound.unhold();
    this.queues.clear();
    this.rotation.length = 0;
    this.turn = 0;
    this.waiting = 0;
    this.inProgress.clear();
    return out;
  }
}
