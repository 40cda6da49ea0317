import type { JetStreamManager } from '@nats-io/jetstream';
import { BatonError, toErrorInfo } from '../errors.js';
import { token } from './nats-names.js';

/**
 * Where a key's tasks go at a stage that orders by key: FNV-1a of the key (of the id without one)
 * modulo the partition count. Every process computes the same partition for a key.
 */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

/**
 * The key partitions of a distributed pipeline's stages that order by key: subject
 * `baton.<p>.k.<stage>.<i>` and durable consumer `k-<stage>-<i>` per partition, each with
 * max_ack_pending 1, so the server hands a partition's next task to whichever process asks only
 * once the one before has ended. The count is in each consumer's description, which is how a
 * process that joins with another count is refused and how tools read it back.
 */
export class KeyPartitions {
  constructor(
    private readonly p: string,
    /** Stages that order by key, and how many partitions each has. */
    private readonly keyed: ReadonlyMap<string, number>,
  ) {}

  /** Which stages of the work stream order by key, and over how many partitions, read from its consumers (for tools). */
  static async read(jsm: JetStreamManager, stream: string): Promise<Map<string, number>> {
    const keyed = new Map<string, number>();
    for await (const c of jsm.consumers.list(stream)) {
      const m = /^k-([A-Za-z0-9_-]+)-\d+$/.exec(c.name);
      const n = /^baton key partition \d+ of (\d+)$/.exec(c.config.description ?? '');
      if (m !== null && n !== null) keyed.set(Buffer.from(m[1]!, 'base64url').toString('utf8'), Number(n[1]));
    }
    return keyed;
  }

  /** How many partitions `stage` has (undefined: it does not order by key). */
  count(stage: string): number | undefined {
    return this.keyed.get(stage);
  }

  /** The subject of the partition of `key` (of `id` without one) at `stage`; undefined if it does not order by key. */
  subjectFor(stage: string, key: string | undefined, id: string): string | undefined {
    const n = this.keyed.get(stage);
    return n === undefined ? undefined : this.subject(stage, partitionOf(key ?? id, n));
  }

  subject(stage: string, i: number): string {
    return `baton.${this.p}.k.${token(stage)}.${i}`;
  }

  consumer(stage: string, i: number): string {
    return `k-${token(stage)}-${i}`;
  }

  /**
   * Makes (or finds) every partition's consumer on `stream`. A count that differs from the one the
   * consumers were made with is refused (ERR_INVALID_OPTION): the keys would not land where the
   * other processes look for them.
   */
  async ensureConsumers(jsm: JetStreamManager, stream: string, pipeline: string, ackWaitMs: number, ackPolicy: string): Promise<void> {
    for (const [stage, n] of this.keyed) {
      for (let i = 0; i < n; i++) {
        const config = {
          durable_name: this.consumer(stage, i),
          filter_subject: this.subject(stage, i),
          ack_policy: ackPolicy,
          ack_wait: ackWaitMs * 1_000_000,
          max_ack_pending: 1,
          description: `baton key partition ${i} of ${n}`,
        };
        // Looked at before any add: the server takes an add of an existing consumer with another
        // description as an update, which would rewrite the other processes' partitions.
        const have = await jsm.consumers.info(stream, config.durable_name).then((c) => c.config.description ?? 'none', () => undefined);
        if (have !== undefined && have !== config.description) {
          throw new BatonError('ERR_INVALID_OPTION', `pipeline '${pipeline}': stage '${stage}' orders by key over ${n} partitions here, but its consumers on the server were made for another count (${have}); give every process the same keyPartitions.`, { pipeline, stage, keyPartitions: n });
        }
        if (have !== undefined) continue;
        try {
          await jsm.consumers.add(stream, config as never);
        } catch (err) {
          if (!/already in use|already exists/i.test(toErrorInfo(err).message)) throw err;
        }
      }
      // Every description matched: one consumer past the end means the server has more partitions.
      const extra = await jsm.consumers.info(stream, this.consumer(stage, n)).then(() => true, () => false);
      if (extra) throw new BatonError('ERR_INVALID_OPTION', `pipeline '${pipeline}': stage '${stage}' orders by key over ${n} partitions here, but the server has consumers for more; give every process the same keyPartitions.`, { pipeline, stage, keyPartitions: n });
    }
  }
}
