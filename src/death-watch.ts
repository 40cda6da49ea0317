import { invalidOption, toErrorInfo, type ErrorInfo } from './errors.js';
import type { Logger } from './logging.js';

/** Told once when a watched actor, supervisor, pipeline or stage ends for good. */
export interface Terminated {
  readonly address: string;
  readonly reason: string;
  readonly error?: ErrorInfo;
}

/**
 * Death watch for one actor system: who wants to hear when an address ends for good (not when it
 * restarts). The system says which addresses are alive and when one ended; listeners that throw
 * are logged and skipped, never unwinding the runtime.
 */
export class DeathWatch {
  private readonly watchers = new Map<string, Set<(t: Terminated) => void>>();

  constructor(
    private readonly log: Logger,
    /** Whether something lives at an address now. */
    private readonly isLive: (address: string) => boolean,
  ) {}

  /** See ActorSystem.watch. */
  watch(address: string, listener: (t: Terminated) => void): () => void {
    if (typeof listener !== 'function') throw invalidOption('watch listener', listener, 'a function (terminated) => void');
    if (!this.isLive(address)) {
      queueMicrotask(() => this.tell(listener, { address, reason: 'unknown' }));
      return () => undefined;
    }
    let set = this.watchers.get(address);
    if (set === undefined) this.watchers.set(address, (set = new Set()));
    set.add(listener);
    return () => void set!.delete(listener);
  }

  watched(address: string): boolean {
    return this.watchers.has(address);
  }

  /** The address ended for good: its watchers are told once, and forgotten. */
  ended(address: string, reason: string, error?: unknown): void {
    const set = this.watchers.get(address);
    if (set === undefined) return;
    this.watchers.delete(address);
    const t: Terminated = { address, reason, ...(error === undefined ? {} : { error: toErrorInfo(error) }) };
    for (const l of set) this.tell(l, t);
  }

  private tell(listener: (t: Terminated) => void, t: Terminated): void {
    try {
      listener(t);
    } catch (err) {
      this.log.error({ err, address: t.address }, 'watch listener threw; ignored');
    }
  }
}
