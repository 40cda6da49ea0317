import type { Envelope } from '../actors/envelope.js';
import type { Clock } from '../src/clock.js';
import { decode, encode } from '../src/codec.js';
import { BatonError } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { StoredOutcome } from '../src/journal/journal.js';
import type { PipelineWire } from '../src/journal/nats-wire.js';
import { branchId, branchOf, isBranchId } from './join-record.js';
import { encodeErrors, type NatsStageStore } from './nats-stage-store.js';

/** A branch's end as the join record keeps it, after its index: [stage, 1, output] or [stage, 0, code, history, attempts]. */
export type DistributedBranchEnd = [stage: string, ok: 1, output: Uint8Array] | [stage: string, ok: 0, code: string, errors: Uint8Array | null, attempts: number];

/** A distributed fan-out's join record: msgpack [1, from, to, input, fromPayload, ends]. */
interface JoinRecord {
  readonly from: string;
  readonly to: string[];
  readonly input: Uint8Array;
  /** The input the fanning stage had: a dead letter's payload, so a replay fans the task out again. */
  readonly fromPayload: Uint8Array;
  readonly ends: [number, ...DistributedBranchEnd][];
}

/**
 * Fan-out across processes, for a DistributedPipeline. The join record goes to the KV bucket
 * `<bucket>_fan` (made by the first process to fan the task out; one that does it again after a crash
 * keeps the first record), then one task per branch, `<id>#fan<i>`, to each stage, then the task's
 * message is acked. Each branch's end is added to the record with a conditional update, by whichever
 * process ends it; the last one publishes the task's outcome and deletes the record. Owns nothing but
 * its wire: the state is on the server.
 */
export class DistributedJoins {
  constructor(
    private readonly pipeline: string,
    private readonly wire: () => PipelineWire,
    private readonly events: EventStream,
    private readonly clock: Clock,
  ) {}

  /** Records the fan-out and sends the branches from `store` (the fanning stage's); returns none to hand on. A branch fanning out again is refused. */
  fanOut(env: Envelope, id: string, store: NatsStageStore, from: string, to: readonly string[]): Envelope[] | BatonError {
    if (isBranchId(id)) {
      return new BatonError('ERR_INVALID_OPTION', `the route of stage '${this.pipeline}/${from}' sent task ${id}, itself a branch of a fanned-out task, to ${to.length} stages; across processes a branch routes to one stage (or null).`, { stage: `${this.pipeline}/${from}` });
    }
    const input = env.bytes!;
    env.bytes = undefined;
    const fromPayload = store.payloadOf(id) ?? encode(null, `the input of task ${id}`);
    const life = store.lifeOf(id);
    const hop = store.hopOf(id) + 1;
    const errors = encodeErrors(env);
    const key = env.key;
    store.finish(id, async () => {
      const wire = this.wire();
      const held = decodeJoin(await wire.records.joinCreate(id, encode([1, from, to, input, fromPayload, []], `the fan-out record of task ${id}`)));
      for (const [i, stage] of held.to.entries()) await wire.publishTask(stage, { id: branchId(id, i), key, hop, life, payload: held.input, errors });
    }, 'ack');
    return [];
  }

  /**
   * A branch ended at the stage of `store`: its end goes into the join record; if it was the last, the
   * task's outcome is published (a dead letter at the stage that fanned out, with that stage's input,
   * if a branch was dead-lettered: a replay fans it out again). False if `id` is not a branch's.
   */
  branchEnded(env: Envelope, id: string, store: NatsStageStore, end: DistributedBranchEnd, attempts: number): boolean {
    const branch = branchOf(id);
    if (branch === undefined) return false;
    const { parent, index: i } = branch;
    const life = store.lifeOf(id);
    store.finish(id, async () => {
      const wire = this.wire();
      const done = await wire.records.joinUpdate(parent, (bytes) => {
        const rec = decodeJoin(bytes);
        // Ended before (a branch redone after a crash): nothing to add, but finish the task if that was left undone.
        if (rec.ends.some((e) => e[0] === i)) return { next: undefined, result: rec.ends.length === rec.to.length ? rec : undefined };
        rec.ends.push([i, ...end]);
        return { next: encodeJoin(rec, parent), result: rec.ends.length === rec.to.length ? rec : undefined };
      });
      if (done === undefined) return;
      await this.publishJoined(parent, env.key, done, end[0], attempts, life);
      await wire.records.joinDelete(parent);
    }, end[1] === 1 ? 'ack' : 'term');
    return true;
  }

  private async publishJoined(id: string, key: string | undefined, rec: JoinRecord, stage: string, attempts: number, life: string): Promise<void> {
    const wire = this.wire();
    const dead = rec.ends.find((e) => e[2] === 0) as [number, string, 0, string, Uint8Array | null, number] | undefined;
    if (dead === undefined) {
      const outputs = rec.ends.map((e) => ({ stage: e[1], output: decode((e as [number, string, 1, Uint8Array])[3]) }));
      const o: StoredOutcome = { id, key, status: 'completed', stage, attempts, output: encode(outputs, `the joined outputs of task ${id}`), errors: undefined, code: undefined, finishedAt: Date.now() };
      return wire.publishOutcome(o, life);
    }
    const o: StoredOutcome = { id, key, status: 'dead', stage: rec.from, attempts: dead[5], output: undefined, errors: dead[4] ?? undefined, code: dead[3], finishedAt: Date.now() };
    this.events.emit({ type: 'dead-lettered', path: `${this.pipeline}/${rec.from}`, at: this.clock.now(), taskId: id, error: { name: 'BatonError', code: dead[3], message: `branch ${dead[0]} of task ${id} (stage '${dead[1]}') was dead-lettered` } });
    await wire.publishDead(o, rec.fromPayload, life);
    await wire.publishOutcome(o, life);
  }
}

function decodeJoin(bytes: Uint8Array): JoinRecord {
  const v = decode<unknown[]>(bytes);
  if (!Array.isArray(v) || v[0] !== 1 || typeof v[1] !== 'string' || !Array.isArray(v[2]) || !(v[3] instanceof Uint8Array) || !(v[4] instanceof Uint8Array) || !Array.isArray(v[5])) {
    throw new BatonError('ERR_JOURNAL_CORRUPT', 'a fan-out record in the NATS bucket is not one Baton wrote; delete its key in the <bucket>_fan bucket.', {});
  }
  return { from: v[1], to: v[2] as string[], input: v[3], fromPayload: v[4], ends: v[5] as JoinRecord['ends'] };
}

function encodeJoin(rec: JoinRecord, id: string): Uint8Array {
  return encode([1, rec.from, rec.to, rec.input, rec.fromPayload, rec.ends], `the fan-out record of task ${id}`);
}
