import type { Envelope } from '../actors/envelope.js';
import { encode } from '../src/codec.js';
import { toErrorInfo } from '../src/errors.js';
import type { StoredTask } from '../src/journal/journal.js';
import type { PipelineWire, WireTask } from '../src/journal/nats-wire.js';
import type { Logger } from '../src/logging.js';
import { envelopeOf, type PagedTask } from './durable-log.js';
import { KeptAttempts } from './kept-attempts.js';
import type { StageStore } from './stage-store.js';

/** Fetches wait this long for a first message (a long poll): an idle stage asks the server once a second. */
export const FETCH_EXPIRES_MS = 1_000;

/** A task a stopping process's pull request gets is given back this much later: after the request ends. */
const GIVE_BACK_DELAY_MS = FETCH_EXPIRES_MS + 100;

/**
 * One hosted stage's side of the server: its backlog is the stage's consumer (a page is a fetch),
 * a move is a publish to the next stage followed by an ack, a finish an outcome publish followed by
 * an ack (or a term for a dead letter). Owns the tasks in hand (their messages) and keeps them from
 * redelivery with in-progress acks. A task the server delivered before, not as a clean give-back,
 * is a suspect (its process probably died with it): it runs alone; one whose processes died with it
 * maxAttempts times is dead-lettered with ERR_PROCESS_DIED without running (KeptAttempts counts the
 * give-backs, and the attempts charged).
 */
export class NatsStageStore implements StageStore {
  readonly journaled = true;
  /** The stage's pipeline is stopping here: no more fetches. */
  closing = false;
  /** The pull loop (see pull): settles once its last request has ended after `closing`. */
  pulling: Promise<void> = Promise.resolve();
  private readonly held = new Map<string, WireTask>();
  private pending = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly stage: string,
    private readonly wire: PipelineWire,
    private readonly log: Logger,
    private readonly maxAttempts: () => number,
    private readonly gone: (err: unknown) => void,
  ) {
    this.attempts = new KeptAttempts(stage, wire, log);
  }

  /** What the server keeps of its tasks beside their messages: attempts charged, clean give-backs. */
  private readonly attempts: KeptAttempts;

  encodeOutput(env: Envelope, output: unknown, what: string): void {
    env.bytes = encode(output, what);
  }

  /**
   * A failed run retries here; the message stays in hand (in-progress acks) until the task ends. Its
   * attempts and history also go to the server (see KeptAttempts), for the process that gets it if
   * this one dies or stops.
   */
  recordFailure(id: string, env: Envelope): void {
    const t = this.held.get(id);
    if (t === undefined) return;
    this.pending++; // a clean stop waits for it (see idle), so the next process finds it
    void this.attempts.failed(t, env.attempts, env.errors).finally(() => this.settled());
  }

  /** Gives `t` back to the server uncharged once that is counted there (a clean stop waits: see idle). */
  private handBack(t: WireTask, nak: () => void): void {
    this.pending++;
    void this.attempts.givenBack(t, () => safely(nak)).finally(() => this.settled());
  }

  recordMove(id: string, env: Envelope, to: string): void {
    const t = this.held.get(id);
    const bytes = env.bytes!;
    env.bytes = undefined;
    const hop = (t?.hop ?? 0) + 1;
    const life = t?.life ?? '0';
    this.finish(id, () => this.wire.publishTask(to, { id, key: env.key, hop, life, payload: bytes, errors: encodeErrors(env) }).then(() => undefined), 'ack');
  }

  recordStart(_ids: readonly string[], _isolated: boolean, then: (ok: boolean) => void): void {
    then(true); // the server knows what is in hand: a message not acked comes back after ack_wait
  }

  endIsolation(): void {}

  /** Tasks the consumer delivered that wait to be paged into the stage. */
  hasBacklog(): boolean {
    return this.arrived.length > 0;
  }

  canPage(): boolean {
    return !this.closing && this.arrived.length > 0;
  }

  /** Gives the stage up to `room` delivered tasks, at once (the fetch loop keeps `arrived` filled). */
  // The breaker's hold is each process's own here (not yet shared by the replicas of a stage, nor kept
  // across a restart): a process that restarts during an outage probes it again from closed.
  recordBreaker(): void {}

  storedBreaker(): undefined {
    return undefined;
  }

  wallNow(): number {
    return Date.now();
  }

  keeper(): undefined {
    return undefined;
  }

  page(room: number, _keyOrdered: boolean, take: (tasks: PagedTask[]) => void): void {
    if (!this.canPage() || room <= 0) return;
    take(this.arrived.splice(0, room).map((t) => this.paged(t)));
    this.roomMade?.();
  }

  /**
   * Pulls the stage's tasks while it runs: a fetch of what `arrived` has room for (at most the
   * stage's inbox capacity), each message handed on as it comes (a fetch's iterator yields at once),
   * the stage woken; a full `arrived` waits for the stage to page some in. A stage that orders by
   * key pulls each key partition on its own instead: the server has at most one task of a partition
   * in hand anywhere, so each pull asks for one.
   */
  async pull(capacity: number, wake: () => void): Promise<void> {
    const partitions = this.wire.partitions(this.stage);
    if (partitions !== undefined) {
      await Promise.all(Array.from({ length: partitions }, (_, i) => this.pullPartition(i, wake)));
      return;
    }
    while (!this.closing) {
      const room = capacity - this.arrived.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.roomMade = resolve));
        this.roomMade = undefined;
        continue;
      }
      await this.fetchInto(room, wake, undefined);
    }
  }

  private async pullPartition(partition: number, wake: () => void): Promise<void> {
    while (!this.closing) await this.fetchInto(1, wake, partition);
  }

  /** A clean stop: no more pull requests (the open ones end on the server within FETCH_EXPIRES_MS). */
  stopPulling(): void {
    this.closing = true;
    this.roomMade?.(); // a loop waiting for room in `arrived` ends now
  }

  /**
   * One pull request: what arrives goes to `arrived` (the stage woken), or, once closing, back to the
   * server after GIVE_BACK_DELAY_MS: by then this request has ended there, so the task goes to another
   * process (given back at once it came back to this request, again and again, each time counted as
   * a delivery, until the next process dead-lettered it with ERR_PROCESS_DIED).
   */
  private async fetchInto(max: number, wake: () => void, partition: number | undefined): Promise<void> {
    try {
      await this.wire.fetch(
        this.stage,
        max,
        FETCH_EXPIRES_MS,
        (task) => {
          if (this.closing) return this.handBack(task, () => task.msg.nak(GIVE_BACK_DELAY_MS));
          this.arrived.push(task);
          wake();
        },
        partition,
      );
    } catch (err) {
      if (this.closing) return;
      this.log.warn({ err: toErrorInfo(err), stage: this.stage, partition }, 'fetch failed; trying again');
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private arrived: WireTask[] = [];
  private roomMade: (() => void) | undefined = undefined;

  private paged(t: WireTask): PagedTask {
    const prior = this.held.get(t.id);
    if (prior !== undefined && prior.msg !== t.msg) safely(() => prior.msg.ack()); // the server sent it again: the newer delivery counts
    this.held.set(t.id, t);
    const row: StoredTask = { id: t.id, seq: t.msg.seq, key: t.key, stage: this.stage, payload: t.payload, attempts: 0, errors: t.errors };
    const env = envelopeOf(row);
    const kept = t.deliveries > 1 ? this.attempts.read(t) : undefined;
    if (kept !== undefined) {
      env.attempts = kept.attempts;
      if (kept.errors.length > 0) env.errors = kept.errors;
    }
    // Deliveries that were not clean give-backs: each was a process that died with the task in hand.
    const crashes = t.deliveries - 1 - (kept?.given ?? 0);
    const max = this.maxAttempts();
    if (crashes >= max) {
      // In hand maxAttempts times when its process died, and never finished: it took them down.
      env.attempts = max - 1;
      return { env, running: 'isolated' };
    }
    return { env, running: crashes > 0 ? 'suspect' : 'no' };
  }

  /** Hops a task in hand has made so far. */
  hopOf(id: string): number {
    return this.held.get(id)?.hop ?? 0;
  }

  /** The life of a task in hand ('0' unless it was replayed). */
  lifeOf(id: string): string {
    return this.held.get(id)?.life ?? '0';
  }

  /** The input a task had at this stage (for its dead letter). */
  payloadOf(id: string): Uint8Array | undefined {
    return this.held.get(id)?.payload;
  }

  /** The task ended here: `publish` its next step, then ack (or term) its message; on failure give it back. */
  finish(id: string, publish: () => Promise<void>, then: 'ack' | 'term'): void {
    const t = this.held.get(id);
    this.held.delete(id);
    this.pending++;
    publish()
      .then(
        () => {
          safely(() => (then === 'ack' ? t?.msg.ack() : t?.msg.term()));
          this.attempts.forget(id);
        },
        (err: unknown) => {
          safely(() => t?.msg.nak());
          this.gone(err);
        },
      )
      .catch((err: unknown) => this.log.error({ err: toErrorInfo(err), stage: this.stage }, 'finishing a task failed; the server redelivers it'))
      .finally(() => this.settled());
  }

  /** In-progress acks for everything in hand, and for what waits in `arrived` to be paged in. */
  keepAlive(): void {
    for (const t of this.held.values()) safely(() => t.msg.working());
    for (const t of this.arrived) safely(() => t.msg.working());
  }

  /** Gives a task in hand back to the server at once (a stop, a stage that ended). */
  giveBack(id: string): void {
    const t = this.held.get(id);
    if (t === undefined) return;
    this.held.delete(id);
    this.handBack(t, () => t.msg.nak());
  }

  giveBackAll(): void {
    for (const id of [...this.held.keys()]) this.giveBack(id);
    for (const t of this.arrived.splice(0)) this.handBack(t, () => t.msg.nak());
    this.roomMade?.();
  }

  private settled(): void {
    if (--this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when every publish (and write of attempts) this store started has been answered. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/**
 * Acks, naks, terms and in-progress acks are fire-and-forget: on a connection that is closing or
 * reconnecting the client may throw, and that must not unwind the stage (the server redelivers what
 * was not acked, after ack_wait).
 */
export function safely(op: () => void): void {
  try {
    op();
  } catch {
    // the server will redeliver: at least once, never lost
  }
}

export function encodeErrors(env: Envelope): Uint8Array | undefined {
  return env.errors === undefined || env.errors.length === 0 ? undefined : encode(env.errors, 'an error history');
}
