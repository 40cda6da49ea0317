import { checkKeys } from './options.js';
import { invalidOption } from './errors.js';
import { RingBuffer } from './ring-buffer.js';

/**
 * What a full mailbox does with one more message:
 * - `back-pressure`: the sender awaits room (`await ref.send(msg)`, `await pipeline.send(input)`);
 * - `reject`: the sender gets `'rejected'` back, never a throw into its own code;
 * - `drop`: the new message goes to dead letters and the sender gets `'dropped'`.
 */
export type OverflowPolicy = 'back-pressure' | 'reject' | 'drop';

/** An inbox: how many messages it holds and what happens when it is full. */
export interface MailboxOptions {
  /** Most messages waiting at once. Optional; defaults to 1,000. */
  readonly capacity?: number;
  /** Optional; defaults to 'back-pressure'. */
  readonly overflow?: OverflowPolicy;
}

export interface MailboxPolicy {
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
}

export const DEFAULT_MAILBOX: MailboxPolicy = Object.freeze({ capacity: 1_000, overflow: 'back-pressure' });

export function mailboxPolicy(options: MailboxOptions = {}, path = 'mailbox', defaults = DEFAULT_MAILBOX): MailboxPolicy {
  if (options === null || typeof options !== 'object') throw invalidOption(path, options, "an object { capacity?, overflow? }");
  checkKeys(options, ['capacity', 'overflow'], path);
  const capacity = options.capacity ?? defaults.capacity;
  const overflow = options.overflow ?? defaults.overflow;
  if (!(Number.isInteger(capacity) && capacity >= 1)) throw invalidOption(`${path}.capacity`, capacity, 'an integer >= 1');
  if (overflow !== 'back-pressure' && overflow !== 'reject' && overflow !== 'drop') {
    throw invalidOption(`${path}.overflow`, overflow, "'back-pressure', 'reject' or 'drop'");
  }
  return Object.freeze({ capacity, overflow });
}

/**
 * A bounded FIFO with a queue of producers waiting for room. Each item taken out wakes one
 * waiter; a waiter re-checks for room when it runs, so a wake-up is a hint, never a promise.
 */
export class Mailbox<T> extends RingBuffer<T> {
  private waitersBuf: RingBuffer<() => void> | undefined = undefined;
  private get waiters(): RingBuffer<() => void> {
    return (this.waitersBuf ??= new RingBuffer<() => void>(4));
  }
  /** Copied out of the policy: `hasRoom` is on the hot path. */
  readonly capacity: number;

  constructor(readonly policy: MailboxPolicy) {
    super(4); // grows on demand: an idle agent should not hold a 1,024-slot array
    this.capacity = policy.capacity;
  }

  /**
   * Messages counted against the bound without being in the queue: an agent's tasks parked behind
   * their key, or room reserved for a page of tasks on its way from an asynchronous journal.
   */
  private held = 0;

  hasRoom(): boolean {
    return this.length + this.held < this.capacity;
  }

  hold(n = 1): void {
    this.held += n;
  }

  /** `n` held messages are gone (run, or dropped with their stage): room is made. */
  unhold(n = 1): void {
    if (n <= 0) return;
    this.held -= n;
    if (this.waitersBuf !== undefined || this.producers !== undefined) this.roomMade();
  }

  override shift(): T | undefined {
    const item = super.shift();
    if (item !== undefined && (this.waitersBuf !== undefined || this.producers !== undefined)) this.roomMade();
    return item;
  }

  override removeFirst(pred: (item: T) => boolean): T | undefined {
    const item = super.removeFirst(pred);
    if (item !== undefined && (this.waitersBuf !== undefined || this.producers !== undefined)) this.roomMade();
    return item;
  }

  /**
   * Calls `wake` once, when an item next leaves (or at `wakeAll`). For producers that are few and
   * re-check (upstream stages): registering twice is one registration, and every one of them is
   * woken when room is made. Waking one per item instead loses wake-ups: a stage registered twice
   * (a second time while its first wake was pending) spends the second wake on nothing, and the
   * other stage waiting on this inbox never hears of the room (found by the testkit's fan-out runs).
   */
  onRoom(wake: () => void): void {
    (this.producers ??= new Set()).add(wake);
  }

  private producers: Set<() => void> | undefined = undefined;

  private roomMade(): void {
    if (this.waitersBuf !== undefined && this.waitersBuf.length > 0) this.waitersBuf.shift()!();
    const producers = this.producers;
    if (producers !== undefined && producers.size > 0) {
      this.producers = undefined;
      for (const wake of producers) wake();
    }
  }

  /** A woken sender that did not use the room it was woken for hands the wake-up on. */
  passRoom(): void {
    if (this.hasRoom() && this.waitersBuf !== undefined && this.waitersBuf.length > 0) this.waitersBuf.shift()!();
  }

  waitForRoom(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every waiter (the owner stopped: senders re-check and see it). */
  wakeAll(): void {
    if (this.waitersBuf !== undefined) for (const w of this.waitersBuf.clear()) w();
    const producers = this.producers;
    this.producers = undefined;
    if (producers !== undefined) for (const wake of producers) wake();
  }
}
