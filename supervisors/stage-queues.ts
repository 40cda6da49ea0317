import type { Envelope } from '../actors/envelope.js';
import { Mailbox, type MailboxPolicy } from '../src/mailbox.js';
import { RingBuffer } from '../src/ring-buffer.js';
import { KeyOrder } from './key-order.js';
import { KeyFairness } from './key-fairness.js';

/** Shared empty list for rarely used queues: an idle stage allocates none (copy on first write). */
export const NONE: Envelope[] = [];

/**
 * Where a stage's tasks wait, and which runs next. Owns: the bounded inbox (senders wait on it),
 * `ready` (due retries and tasks returned uncharged: they run before the inbox), `delayed` (retries
 * waiting out their backoff, sorted by dueAt) and, with orderByKey, the tasks parked behind their key.
 * Contract: a task is in at most one of these; `waiting` counts them all; `clear` empties them all.
 * The queues start at 4 slots and grow: an idle agent costs about 1 KB.
 */
export class StageQueues {
  readonly inbox: Mailbox<Envelope>;
  readonly ready = new RingBuffer<Envelope>(4);
  /** Retries waiting out their backoff, sorted by dueAt. */
  delayed: Envelope[] = NONE;
  readonly keys: KeyOrder | undefined;
  /** With perKeyConcurrency: turns between keys (the inbox drains into its per-key queues). */
  readonly fair: KeyFairness | undefined;
  /** Whether the task the last `take` returned came from the inbox (a journaled batch holds its slot). */
  tookFromInbox = false;

  constructor(mailbox: MailboxPolicy, orderByKey: boolean, perKeyConcurrency?: number) {
    this.inbox = new Mailbox<Envelope>(mailbox);
    // Parked tasks count against the inbox's bound: one hot key must not let a sender pour in everything.
    this.keys = orderByKey ? new KeyOrder(this.inbox) : undefined;
    this.fair = perKeyConcurrency === undefined ? undefined : new KeyFairness(orderByKey ? 1 : perKeyConcurrency, this.inbox);
  }

  /** The next task from the inbox: by turn between keys with perKeyConcurrency, else the oldest. */
  private fromInbox(): Envelope | undefined {
    return this.fair === undefined ? this.inbox.shift() : this.fair.take();
  }

  /** Tasks waiting here: the inbox, retries waiting out their backoff, tasks held for their key. */
  get waiting(): number {
    return this.inbox.length + this.ready.length + this.delayed.length + (this.keys?.parked ?? 0) + (this.fair?.waiting ?? 0);
  }

  /** A task could be taken now (ignoring key order and any backlog on disk). */
  hasReady(): boolean {
    return this.ready.length > 0 || (this.fair === undefined ? this.inbox.length > 0 : this.fair.runnable(this.inbox.length));
  }

  /**
   * The next task to run: due retries and returned tasks first, then the inbox. `preferFresh` (a probe,
   * or fresh failures adding up towards the breaker) takes the inbox first, then the first task in
   * `ready` that never failed here: a failed probe waits at the end of `ready` (not in the inbox,
   * which would break its bound), so probes rotate through the waiting tasks instead of retrying one.
   * `backlogFirst` (an ordered stage still paging its backlog in from the journal): tasks recovered
   * from the journal were accepted before anything arriving now, so the inbox waits until the whole
   * backlog has been paged in. With key order, a task whose key is busy parks and the next is tried.
   */
  take(preferFresh: boolean, backlogFirst: boolean): Envelope | undefined {
    for (;;) {
      let env: Envelope | undefined;
      let fromInbox = false;
      if (backlogFirst) env = preferFresh ? (this.ready.removeFirst(isFresh) ?? this.ready.shift()) : this.ready.shift();
      else if (preferFresh) {
        env = this.fromInbox();
        fromInbox = env !== undefined;
        env ??= this.ready.removeFirst(isFresh) ?? this.ready.shift();
      } else {
        env = this.ready.shift();
        if (env === undefined) fromInbox = (env = this.fromInbox()) !== undefined;
      }
      this.tookFromInbox = fromInbox;
      if (env === undefined || this.keys === undefined || this.keys.claim(env)) return env;
      // Parked behind an earlier task with its key; KeyOrder hands it back to `ready` in turn.
    }
  }

  /**
   * The breaker's probe: a fresh task (never failed here) picked at random among those waiting, else
   * the first in `ready`. At random, not first in line: after a burst of poison at the front of the
   * inbox the breaker cannot tell it from an outage, and probing in order walked through every poison
   * task (350 of them, one probe a minute: ~15 h) before it met a healthy one; at random, with 30%
   * healthy tasks waiting, a probe meets one in about 3 tries and the breaker closes. A stage that
   * orders by key probes in order (a later task of a key must not run before an earlier one), but
   * first with a task in `ready` that has not failed here: each task there owns its key (a later one
   * parks behind it, see KeyOrder), so any may run. The tasks whose failures opened the breaker wait
   * in front of `ready`, and a task that fails once fails again while it is uncharged: probed in
   * turn, five of them held a stage across processes (all it holds is in `ready`) through failed
   * probes of 1 + 2 + 4 + 8 + 16 s while four healthy tasks waited behind them.
   */
  takeProbe(random: () => number, failures: { unprobed(env: Envelope): boolean; untried(env: Envelope): boolean }): Envelope | undefined {
    if (this.keys !== undefined || this.fair !== undefined) return this.takeUntried(failures) ?? this.take(true, false);
    // Among fresh tasks that have not had their probe in this hold (each gets one free probe before any
    // is charged: BreakerPolicy.maxHoldMs); once every one has, in turn, as before.
    const eligible = (env: Envelope): boolean => env.attempts === 0 && failures.unprobed(env);
    let readyEligible = 0;
    for (const env of this.ready) if (eligible(env)) readyEligible++;
    const n = this.inbox.length + readyEligible;
    if (n === 0) return this.take(true, false);
    let k = Math.floor(random() * n);
    if (k < this.inbox.length) {
      this.tookFromInbox = true;
      return this.inbox.removeFirst(() => k-- === 0);
    }
    k -= this.inbox.length;
    this.tookFromInbox = false;
    return this.ready.removeFirst((env) => eligible(env) && k-- === 0);
  }

  /** With key order: the first task in `ready` that has not failed here (see takeProbe), else undefined. */
  takeUntried(failures: { untried(env: Envelope): boolean }): Envelope | undefined {
    if (this.keys === undefined) return undefined;
    const env = this.ready.removeFirst((e) => failures.untried(e));
    if (env !== undefined) this.tookFromInbox = false;
    return env;
  }

  /**
   * Puts a task taken for a batch but not started back at the front: into the inbox if it came from
   * there (its slot was held meanwhile, see StageBacklog), else into `ready`.
   */
  putBack(env: Envelope, fromInbox: boolean): void {
    if (!fromInbox) return this.ready.unshift(env);
    this.fair?.released(env); // it is taken by turn again, and counted again then
    this.inbox.unhold();
    this.inbox.unshift(env);
  }

  /** `env` leaves the stage (handed on or dead-lettered): the next task with its key may run. */
  release(env: Envelope): void {
    this.keys?.release(env, this.ready);
    this.fair?.released(env);
  }

  /** Puts a retry in `delayed` at its place (due retries move to `ready` with releaseDue). */
  delay(env: Envelope, dueAt: number): void {
    env.dueAt = dueAt;
    if (this.delayed === NONE) this.delayed = [];
    let i = this.delayed.length;
    while (i > 0 && this.delayed[i - 1]!.dueAt > dueAt) i--;
    this.delayed.splice(i, 0, env);
  }

  /** When the first retry is due, or Infinity. */
  nextDue(): number {
    return this.delayed.length > 0 ? this.delayed[0]!.dueAt : Infinity;
  }

  /** Moves the retries due by `now` to `ready`. */
  releaseDue(now: number): void {
    while (this.delayed.length > 0 && this.delayed[0]!.dueAt <= now) this.ready.push(this.delayed.shift()!);
  }

  /** Takes the waiting task `pred` picks out of whichever queue holds it (a cancel); undefined if none. */
  remove(pred: (env: Envelope) => boolean): Envelope | undefined {
    const found = this.ready.removeFirst(pred) ?? this.inbox.removeFirst(pred) ?? this.keys?.removeParked(pred) ?? this.fair?.remove(pred);
    if (found !== undefined) return found;
    const i = this.delayed.findIndex(pred);
    return i < 0 ? undefined : this.delayed.splice(i, 1)[0];
  }

  /** Empties every queue (the stage ends); senders waiting for room are woken to find it gone. */
  clear(): Envelope[] {
    const left = [...this.ready.clear(), ...this.delayed.splice(0), ...this.inbox.clear(), ...(this.keys?.clear() ?? []), ...(this.fair?.clear() ?? [])];
    this.inbox.wakeAll();
    return left;
  }
}

const isFresh = (env: Envelope): boolean => env.attempts === 0;
