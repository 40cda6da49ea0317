import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { decode, encode } from '../codec.js';
import { BatonError, toErrorInfo } from '../errors.js';
import type { StoredOutcome } from './journal.js';
import { token } from './nats-names.js';
import { KeyPartitions } from './nats-key-partitions.js';
import { TaskRecords } from './nats-task-records.js';

/** What natsJetStream() hands a distributed pipeline: its connection and the client modules it loaded. */
export interface NatsWire {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The KV bucket of fan-out joins (`<bucket>_fan`, made on first use): `<p>.<id>` per fanned-out task. */
  readonly joins: () => Promise<KV>;
  /**
   * The KV bucket of the attempts tasks were charged at their stage (`<bucket>_tries`, made on first
   * use, keys kept TRIES_TTL_MS): `<p>.<stage>.<id>` per task that failed there or was given back, and has not moved on.
   */
  readonly tries: () => Promise<KV>;
  readonly timeoutMs: number;
  readonly lib: {
    readonly headers: () => { set(k: string, v: string): void; get(k: string): string };
    readonly AckPolicy: { readonly Explicit: 'explicit' };
    readonly DeliverPolicy: { readonly New: 'new'; readonly All: 'all' };
    readonly RetentionPolicy: { readonly Workqueue: 'workqueue'; readonly Limits: 'limits' };
    readonly StorageType: { readonly File: 'file' };
    readonly DiscardPolicy: { readonly New: 'new' };
  };
}


/** One task as a stage's consumer delivered it. `ack`/`term`/`nak`/`working` go to the server. */
export interface WireTask {
  readonly id: string;
  readonly key: string | undefined;
  readonly payload: Uint8Array;
  readonly errors: Uint8Array | undefined;
  /** How many times the server has delivered this message here (1: the first time). */
  readonly deliveries: number;
  /** Hops so far (each handoff adds one): makes each visit's de-duplication id unique. */
  readonly hop: number;
  /** Which life of the task this is ('0'; a replay starts a new one): part of every de-duplication id. */
  readonly life: string;
  /** A delivery after the first: what the last process charged it at this stage (saveTries), if anything. */
  readonly tries?: Uint8Array;
  readonly msg: JsMsg;
}

/** How long the server waits for an ack before it redelivers, by default (in-progress acks keep a long run). */
export const ACK_WAIT_MS = 30_000;

/**
 * One distributed pipeline's streams on JetStream:
 * - `BATON_<p>_WORK` (work queue): subject `baton.<p>.w.<stage>` per stage, one durable pull consumer
 *   per stage, shared by every process that hosts the stage (each message goes to one of them). A
 *   stage that orders by key has instead `keyPartitions` subjects `baton.<p>.k.<stage>.<i>`, each
 *   with its own durable consumer that has at most one message unacknowledged (max_ack_pending 1):
 *   the server hands a partition's next task to whichever process asks only once the one before
 *   has ended, so a key's tasks pass the stage in order across every process, with no coordinator.
 *   (A consumer shared by the replicas delivers a key's tasks to two processes at once.)
 * - `BATON_<p>_OUT` (limits, kept `keepMs`): every outcome, de-duplicated by task id, read by every
 *   process that joined the pipeline;
 * - `BATON_<p>_DEAD` (limits, kept until replayed): the dead letters, browsable.
 * Messages carry Baton's headers (Baton-Id, Baton-Key, Baton-Hop, Baton-Errors) and a Nats-Msg-Id.
 */
export class PipelineWire {
  private readonly p: string;
  /** The pipeline's keys in the KV buckets: fan-out joins and charged attempts. */
  readonly records: TaskRecords;
  /** The key partitions of its stages that order by key. */
  private readonly keys: KeyPartitions;

  private constructor(
    private readonly wire: NatsWire,
    readonly pipeline: string,
    /** Stages that order by key, and how many partitions each has. */
    keyed: ReadonlyMap<string, number>,
  ) {
    this.p = token(pipeline);
    this.records = new TaskRecords(wire, this.p);
    this.keys = new KeyPartitions(this.p, keyed);
  }

  /**
   * Makes (or finds) the streams and one consumer per stage (per partition for a stage that orders
   * by key): idempotent, every joining process does it. A process whose partition count for a stage
   * differs from the one the consumers were made with is refused (ERR_INVALID_OPTION): the keys would
   * not land where the other processes look for them.
   */
  static async open(wire: NatsWire, pipeline: string, stages: readonly string[], options: { readonly keepMs: number; readonly maxPending: number; readonly maxAckPending: number; readonly ackWaitMs: number; readonly keyed?: ReadonlyMap<string, number> }): Promise<PipelineWire> {
    const keyed = options.keyed ?? new Map<string, number>();
    const w = new PipelineWire(wire, pipeline, keyed);
    const { jsm, lib } = wire;
    const add = async (config: Record<string, unknown>): Promise<void> => {
      try {
        await jsm.streams.add(config as never);
      } catch (err) {
        // Already there (another process made it): fine when the subjects match.
        if (!/already in use|already exists/i.test(toErrorInfo(err).message)) throw err;
      }
    };
    const workSubjects = [`baton.${w.p}.w.*`, `baton.${w.p}.k.*.*`];
    await add({ name: w.stream('WORK'), subjects: workSubjects, retention: lib.RetentionPolicy.Workqueue, storage: lib.StorageType.File, max_msgs: options.maxPending, discard: lib.DiscardPolicy.New });
    if (keyed.size > 0) {
      // A stream made by a version without partitions: its subjects gain the partitions' pattern.
      const info = await jsm.streams.info(w.stream('WORK'));
      if (!info.config.subjects?.includes(workSubjects[1]!)) await jsm.streams.update(w.stream('WORK'), { ...info.config, subjects: [...(info.config.subjects ?? []), workSubjects[1]!] } as never);
    }
    await w.keys.ensureConsumers(jsm, w.stream('WORK'), pipeline, options.ackWaitMs, lib.AckPolicy.Explicit);
    await add({ name: w.stream('OUT'), subjects: [`baton.${w.p}.out`], retention: lib.RetentionPolicy.Limits, storage: lib.StorageType.File, max_age: options.keepMs * 1_000_000 });
    await add({ name: w.stream('DEAD'), subjects: [`baton.${w.p}.dead`], retention: lib.RetentionPolicy.Limits, storage: lib.StorageType.File });
    for (const stage of stages) {
      try {
        await jsm.consumers.add(w.stream('WORK'), {
          durable_name: `s-${token(stage)}`,
          filter_subject: w.stageSubject(stage),
          ack_policy: lib.AckPolicy.Explicit,
          ack_wait: options.ackWaitMs * 1_000_000,
          max_ack_pending: options.maxAckPending,
        } as never);
      } catch (err) {
        if (!/already in use|already exists/i.test(toErrorInfo(err).message)) throw err;
      }
    }
    return w;
  }

  /**
   * For tools (the CLI): the streams of distributed pipeline `pipeline` as they are, made by its
   * processes, or undefined if it has none. Makes nothing; which stages order by key (and over how
   * many partitions) is read from their consumers, so a replay reaches the right subject.
   */
  static async attach(wire: NatsWire, pipeline: string): Promise<PipelineWire | undefined> {
    const probe = new PipelineWire(wire, pipeline, new Map());
    const exists = await wire.jsm.streams.info(probe.stream('DEAD')).then(() => true, () => false);
    if (!exists) return undefined;
    return new PipelineWire(wire, pipeline, await KeyPartitions.read(wire.jsm, probe.stream('WORK')));
  }

  /** Names of the distributed pipelines whose streams the server holds (for tools). */
  static async pipelines(wire: NatsWire): Promise<string[]> {
    const out: string[] = [];
    for await (const name of wire.jsm.streams.names()) {
      const m = /^BATON_([A-Za-z0-9_-]+)_DEAD$/.exec(name);
      if (m !== null) out.push(Buffer.from(m[1]!, 'base64url').toString('utf8'));
    }
    return out.sort();
  }

  /**
   * Sends a dead letter back to its stage in a new life and removes it from the dead-letter stream. A
   * new life: its de-duplication ids differ from the first life's, still in the server's window.
   */
  async replayDead(d: { seq: number; outcome: StoredOutcome; payload: Uint8Array }, life = `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`): Promise<void> {
    await this.publishTask(d.outcome.stage, { id: d.outcome.id, key: d.outcome.key, hop: 0, life, payload: d.payload, errors: d.outcome.errors });
    await this.deleteDead(d.seq);
  }

  private stream(kind: 'WORK' | 'OUT' | 'DEAD'): string {
    return `BATON_${this.p}_${kind}`;
  }

  private stageSubject(stage: string): string {
    return `baton.${this.p}.w.${token(stage)}`;
  }

  /** The subject a task goes to at `stage`: the stage's, or for one that orders by key, its key's partition. */
  private subjectFor(stage: string, key: string | undefined, id: string): string {
    return this.keys.subjectFor(stage, key, id) ?? this.stageSubject(stage);
  }

  /** How many partitions `stage` has (undefined: it does not order by key). */
  partitions(stage: string): number | undefined {
    return this.keys.count(stage);
  }

  /** Puts a task at `stage`. Resolves 'duplicate' if the server had this de-duplication id already. */
  async publishTask(stage: string, t: { id: string; key: string | undefined; hop: number; life: string; payload: Uint8Array; errors: Uint8Array | undefined }): Promise<'accepted' | 'duplicate'> {
    const h = this.wire.lib.headers();
    h.set('Baton-Id', t.id);
    if (t.key !== undefined) h.set('Baton-Key', t.key);
    h.set('Baton-Hop', String(t.hop));
    h.set('Baton-Life', t.life);
    // One id per task, life and hop: a repeat of this publish (a lost answer, a stage redone after a
    // crash) is dropped by the server, a later visit or a replayed task is not.
    const msgId = `${t.id}:${t.life}:${t.hop}`;
    if (t.errors !== undefined) h.set('Baton-Errors', Buffer.from(t.errors).toString('base64'));
    const ack = await this.publish(this.subjectFor(stage, t.key, t.id), t.payload, h, msgId);
    return ack.duplicate ? 'duplicate' : 'accepted';
  }

  /**
   * Asks for up to `max` tasks of `stage`, for at most `expiresMs`; `each` gets every one as it
   * arrives. Resolves when the server ends the request (full or expired). Not closed early here: the
   * client drops what it has buffered for a closed request, and the server waits ackWait for those.
   */
  async fetch(stage: string, max: number, expiresMs: number, each: (t: WireTask) => void, partition?: number): Promise<void> {
    const name = partition === undefined ? `s-${token(stage)}` : this.keys.consumer(stage, partition);
    const consumer = (this.consumers[name] ??= await this.wire.js.consumers.get(this.stream('WORK'), name));
    const batch = await consumer.fetch({ max_messages: max, expires: expiresMs });
    for await (const msg of batch) {
      const h = msg.headers;
      const errors = h?.get('Baton-Errors');
      const id = h?.get('Baton-Id') || `${this.pipeline}-unnamed-${msg.seq}`;
      // Delivered before: a process may have charged it attempts or given it back here (only those write
      // a record, so a first delivery has none to read). Unreadable now: it runs with what the server counted.
      const tries = msg.info.deliveryCount > 1 ? await this.records.loadTries(stage, id).catch(() => undefined) : undefined;
      each({
        id,
        key: h?.get('Baton-Key') || undefined,
        payload: msg.data,
        errors: errors ? new Uint8Array(Buffer.from(errors, 'base64')) : undefined,
        deliveries: msg.info.deliveryCount,
        hop: Number(h?.get('Baton-Hop') || 0),
        life: h?.get('Baton-Life') || '0',
        ...(tries === undefined ? {} : { tries }),
        msg,
      });
    }
  }

  private readonly consumers: Record<string, Awaited<ReturnType<JetStreamClient['consumers']['get']>>> = {};

  /** Records an outcome (every process that joined reads it); de-duplicated by task id and life. */
  async publishOutcome(o: StoredOutcome, life: string): Promise<void> {
    await this.publish(`baton.${this.p}.out`, encode(outcomeRow(o), `the outcome of task ${o.id}`), undefined, `out:${o.id}:${life}`);
  }

  /** Records a dead letter with the payload it failed on (for replay); de-duplicated by task id and life. */
  async publishDead(o: StoredOutcome, payload: Uint8Array, life: string): Promise<void> {
    await this.publish(`baton.${this.p}.dead`, encode([outcomeRow(o), payload], `the dead letter ${o.id}`), undefined, `dead:${o.id}:${life}`);
  }

  /** Calls `on` with every outcome recorded from now on, in order; returns a function that stops. */
  async onOutcomes(on: (o: StoredOutcome) => void): Promise<() => void> {
    const consumer = await this.wire.js.consumers.get(this.stream('OUT'), { deliver_policy: this.wire.lib.DeliverPolicy.New } as never);
    // Short pulls with heartbeats: after a server restart the reader notices the lost pull within about
    // 2 s and resumes from the last outcome it saw (with the defaults, 30 s pulls, it took ~40 s).
    const messages = await consumer.consume({
      expires: 2_000,
      idle_heartbeat: 1_000,
      callback: (m) => {
        try {
          on(fromRow(decode(m.data)));
        } catch {
          // not a Baton outcome: skipped (nothing of ours is lost: the task's own record is elsewhere)
        }
      },
    });
    return () => void messages.stop();
  }

  /** Every dead letter still in the stream, oldest first, with its stream sequence and payload. */
  async deadLetters(): Promise<{ seq: number; outcome: StoredOutcome; payload: Uint8Array }[]> {
    const info = await this.wire.jsm.streams.info(this.stream('DEAD'));
    if (info.state.messages === 0) return [];
    const consumer = await this.wire.js.consumers.get(this.stream('DEAD'), { deliver_policy: this.wire.lib.DeliverPolicy.All } as never);
    const out: { seq: number; outcome: StoredOutcome; payload: Uint8Array }[] = [];
    const last = info.state.last_seq;
    const messages = await consumer.consume();
    for await (const m of messages) {
      try {
        const [row, payload] = decode<[unknown, Uint8Array]>(m.data);
        out.push({ seq: m.seq, outcome: fromRow(row), payload });
      } catch {
        // skipped: not a Baton dead letter
      }
      if (m.seq >= last || m.info.pending === 0) break;
    }
    await messages.close().catch(() => undefined);
    return out;
  }

  /** Removes a dead letter (replayed). */
  async deleteDead(seq: number): Promise<void> {
    await this.wire.jsm.streams.deleteMessage(this.stream('DEAD'), seq);
  }

  /** Messages waiting or in flight at the stages (work stream), for drain-style checks and stats. */
  async pendingWork(): Promise<number> {
    return (await this.wire.jsm.streams.info(this.stream('WORK'))).state.messages;
  }

  private async publish(subject: string, data: Uint8Array, h: ReturnType<NatsWire['lib']['headers']> | undefined, msgId: string): Promise<{ duplicate: boolean }> {
    const deadline = Date.now() + this.wire.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.wire.js.publish(subject, data, { msgID: msgId, ...(h === undefined ? {} : { headers: h as never }), timeout: Math.min(5_000, this.wire.timeoutMs) });
      } catch (err) {
        // A lost answer is sent again (the message id makes a repeat harmless); a full stream waits.
        if (Date.now() >= deadline) {
          throw new BatonError('ERR_TRANSPORT_FAILED', `pipeline '${this.pipeline}': NATS did not take a message on '${subject}' within ${this.wire.timeoutMs} ms (${toErrorInfo(err).message}).`, { pipeline: this.pipeline, subject }, err);
        }
        await new Promise((r) => setTimeout(r, Math.min(1_000, 25 * 2 ** Math.min(attempt, 6))));
      }
    }
  }
}

type OutcomeRow = [id: string, key: string | null, status: 'completed' | 'dead', stage: string, attempts: number, output: Uint8Array | null, errors: Uint8Array | null, code: string | null, finishedAt: number];

function outcomeRow(o: StoredOutcome): OutcomeRow {
  return [o.id, o.key ?? null, o.status, o.stage, o.attempts, o.output ?? null, o.errors ?? null, o.code ?? null, o.finishedAt];
}

function fromRow(v: unknown): StoredOutcome {
  if (!Array.isArray(v) || v.length !== 9 || typeof v[0] !== 'string') throw new Error('not an outcome row');
  const [id, key, status, stage, attempts, output, errors, code, finishedAt] = v as OutcomeRow;
  return { id, key: key ?? undefined, status, stage, attempts, output: output ?? undefined, errors: errors ?? undefined, code: code ?? undefined, finishedAt };
}
