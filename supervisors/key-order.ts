import type { Envelope } from '../actors/envelope.js';
import type { RingBuffer } from '../src/ring-buffer.js';

/**
 * Per-key ordering for one stage: at most one task per key is running or waiting for its retry
 * (the key's owner); later tasks with that key park here and are handed back in accepted order
 * when the owner leaves the stage. Tasks without a key are never held.
 */
export class KeyOrder {
  private readonly owners = new Map<string, Envelope>();
  private readonly waiting = new Map<string, Envelope[]>();
  parked = 0;

  /**
   * `bound`: the stage's inbox, whose bound parked tasks count against (they left the inbox but
   * wait at this stage: without this, one hot key let a sender pour in everything it had).
   */
  constructor(private readonly bound?: { hold(): void; unhold(n?: number): void }) {}

  /** True if `env` may run now; otherwise it is parked behind its key's owner. */
  claim(env: Envelope): boolean {
    const key = env.key;
    if (key === undefined) return true;
    const owner = this.owners.get(key);
    if (owner === undefined) {
      this.owners.set(key, env);
      return true;
    }
    if (owner === env) return true;
    const queue = this.waiting.get(key);
    if (queue === undefined) this.waiting.set(key, [env]);
    else queue.push(env);
    this.parked++;
    this.bound?.hold();
    return false;
  }

  /** `env` left the stage (handed on or dead-lettered): its key's next task runs first. */
  release(env: Envelope, ready: RingBuffer<Envelope>): void {
    const key = env.key;
    if (key === undefined || this.owners.get(key) !== env) return;
    const queue = this.waiting.get(key);
    const next = queue?.shift();
    if (next === undefined) {
      this.owners.delete(key);
      return;
    }
    if (queue!.length === 0) this.waiting.delete(key);
    this.parked--;
    this.bound?.unhold();
    this.owners.set(key, next);
    ready.unshift(next);
  }

  /** Takes a parked task out (it was cancelled); undefined if none matches. */
  removeParked(pred: (env: Envelope) => boolean): Envelope | undefined {
    for (const [key, queue] of this.waiting) {
      const i = queue.findIndex(pred);
      if (i < 0) continue;
      const [env] = queue.splice(i, 1);
      if (queue.length === 0) this.waiting.delete(key);
      this.parked--;
      this.bound?.unhold();
      return env;
    }
    return undefined;
  }

  clear(): Envelope[] {
    const out = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.owners.clear();
    this.bound?.unhold(this.parked);
    this.parked = 0;
    return out;
  }
}
