import type { NatsConnection, ConnectionOptions } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { BatonError, invalidOption, toErrorInfo } from '../errors.js';
import { checkKeys } from '../options.js';
import type { Journal } from './journal.js';
import type { NatsWire } from './nats-wire.js';
import { TRIES_TTL_MS } from './nats-task-records.js';
import { loadEntry, NatsPipelineJournal } from './nats-pipeline.js';

/** What `natsJetStream()` takes. Only `servers` is required. */
export interface NatsJournalOptions {
  /** 'nats://host:4222' or a list of them. Required unless `connection` is given. */
  readonly servers?: string | readonly string[];
  /**
   * The KV bucket (a JetStream stream `KV_<bucket>`) that holds the tasks; one bucket may hold many
   * pipelines. Optional; defaults to 'baton'.
   */
  readonly bucket?: string;
  /** Replicas of the bucket when Baton creates it: 1, or 3 in a cluster to survive losing a server. Optional; defaults to 1. */
  readonly replicas?: number;
  /**
   * Passed to the NATS client's `connect()` as they are: credentials (`user`/`pass`, `token`,
   * `authenticator` for nkeys or a creds file), `tls`, `name`, reconnect settings. Optional.
   * Baton sets `noAsyncTraces: true` unless given here: with the client's default, every publish
   * makes two Errors to keep its caller's stack, and in a profile of 3 stages across the server that
   * was 29% of the CPU (Baton wraps the client's errors in its own, which say what failed).
   */
  readonly connectOptions?: Partial<ConnectionOptions>;
  /** Use this connection instead of making one (Baton then leaves it open at close). Optional. */
  readonly connection?: NatsConnection;
  /**
   * How long a journal write may take, ms, retries included: a write whose answer is lost (a server
   * restart, a dropped connection) is sent again until then, and only then fails the pipeline with
   * ERR_TRANSPORT_FAILED. Also the limit for connecting and reading the bucket. Optional; defaults to 30,000.
   */
  readonly timeoutMs?: number;
  /** Wall clock for finishedAt and retention. Optional; defaults to Date.now. */
  readonly now?: () => number;
  /**
   * Read only (the CLI's status, dead-letters and top): the bucket must exist (it is not created) and
   * every write is refused with ERR_JOURNAL_READONLY. Optional; defaults to false.
   */
  readonly readonly?: boolean;
}

const OPTION_KEYS = ['servers', 'bucket', 'replicas', 'connectOptions', 'connection', 'timeoutMs', 'now', 'readonly'] as const;
const BUCKET = /^[A-Za-z0-9_-]{1,64}$/;

/** A journal on NATS JetStream; `wire` is what `system.joinPipeline` builds a distributed pipeline on. */
export interface NatsJournal extends Journal<NatsPipelineJournal> {
  readonly kind: 'nats';
  readonly wire: NatsWire;
}

/**
 * A journal on NATS JetStream: tasks survive the process, and the disk is a NATS server's (or an R3
 * cluster's) instead of a local file. Each task is one key of a KV bucket (`<pipeline>.t.<id>`),
 * each stage's runs in progress one more (`<pipeline>.r.<stage>`); a commit writes the keys it
 * touched, all in flight at once, and resolves when every write is acknowledged.
 *
 * One process writes a pipeline at a time. Every write is conditional on the key's revision this
 * process last saw, so a second process that writes the same pipeline is noticed at its first
 * conflicting write, and the loser's pipeline fails with ERR_TRANSPORT_CONFLICT instead of two
 * processes overwriting each other's tasks.
 *
 * Durability: the server acknowledges a write before it reaches the disk unless it runs with
 * `sync_interval: always` (nats-server >= 2.10); use an R3 bucket (`replicas: 3`) to survive the
 * loss of a machine.
 *
 * Resolves once it has connected and read the bucket: openPipeline() then answers at once.
 */
export async function natsJetStream(options: NatsJournalOptions): Promise<NatsJournal> {
  if (options === null || typeof options !== 'object') throw invalidOption('natsJetStream(options)', options, "an object { servers: 'nats://host:4222', ... }");
  checkKeys(options, OPTION_KEYS, 'natsJetStream(options)');
  const { servers, connection } = options;
  const serverList = typeof servers === 'string' ? [servers] : servers;
  if (connection === undefined && (!Array.isArray(serverList) || serverList.length === 0 || !serverList.every((s) => typeof s === 'string' && s.length > 0))) {
    throw invalidOption('natsJetStream(options).servers', servers, "a server URL such as 'nats://127.0.0.1:4222', or a list of them");
  }
  const bucket = options.bucket ?? 'baton';
  if (typeof bucket !== 'string' || !BUCKET.test(bucket)) throw invalidOption('natsJetStream(options).bucket', bucket, "a name of 1-64 letters, digits, '_' or '-'");
  const replicas = options.replicas ?? 1;
  if (![1, 3, 5].includes(replicas)) throw invalidOption('natsJetStream(options).replicas', replicas, '1, 3 or 5');
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs))) throw invalidOption('natsJetStream(options).timeoutMs', timeoutMs, 'a number of ms > 0');
  if (options.connectOptions !== undefined && (options.connectOptions === null || typeof options.connectOptions !== 'object')) {
    throw invalidOption('natsJetStream(options).connectOptions', options.connectOptions, "the NATS client's connect options (an object)");
  }
  if (options.now !== undefined && typeof options.now !== 'function') throw invalidOption('natsJetStream(options).now', options.now, 'a () => number of ms');

  // Loaded here, not at import: a program that never uses NATS does not load its client.
  const [{ connect, headers }, { jetstream, jetstreamManager, DeliverPolicy, AckPolicy, RetentionPolicy, StorageType, DiscardPolicy }, { Kvm }] = await Promise.all([
    import('@nats-io/transport-node'),
    import('@nats-io/jetstream'),
    import('@nats-io/kv'),
  ]);
  const where = connection === undefined ? serverList!.join(', ') : 'the given connection';
  let nc: NatsConnection;
  try {
    nc = connection ?? (await connect({ noAsyncTraces: true, ...options.connectOptions, servers: [...serverList!] }));
  } catch (err) {
    throw connectError(err, where);
  }
  try {
    try {
      await jetstreamManager(nc, { timeout: timeoutMs });
    } catch (err) {
      throw new BatonError('ERR_TRANSPORT_UNAVAILABLE', `NATS at ${where} has no JetStream (${toErrorInfo(err).message}); start nats-server with -js (or enable jetstream in its config).`, { servers: where }, err);
    }
    // One request waits at most 5 s: a write whose answer was lost is sent again (see write()) rather
    // than waited on for the whole timeoutMs.
    const js = jetstream(nc, { timeout: Math.min(5_000, timeoutMs) });
    const readonly = options.readonly === true;
    if (readonly) {
      const exists = await jetstreamManager(nc, { timeout: timeoutMs }).then((m) => m.streams.info(`KV_${bucket}`)).then(() => true, () => false);
      if (!exists) throw new BatonError('ERR_INVALID_OPTION', `NATS at ${where} has no journal bucket '${bucket}'; give the bucket the system was created with (natsJetStream({ bucket }), 'baton' by default).`, { bucket });
    }
    const kv = readonly ? await new Kvm(js).open(bucket) : await new Kvm(js).create(bucket, { history: 1, replicas, storage: 'file' as never, timeout: timeoutMs });
    // Distributed pipelines keep their fan-out joins in a bucket of their own: the journal's bucket is
    // read whole by every process that opens it, and the joins' churn is none of its business.
    let joins: Promise<KV> | undefined;
    let tries: Promise<KV> | undefined;
    const parts = new Map<string, NatsPipelineJournal>();
    const part = (name: string): NatsPipelineJournal => {
      let p = parts.get(name);
      if (p === undefined) parts.set(name, (p = new NatsPipelineJournal(name, kv, timeoutMs)));
      if (readonly) p.readonly = bucket;
      return p;
    };
    // Read every key's last value once: the state each pipeline answers its reads from.
    const stream = `KV_${bucket}`;
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    const info = await jsm.streams.info(stream);
    if (info.state.messages > 0) {
      const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.LastPerSubject });
      const prefix = `$KV.${bucket}.`.length;
      // Done at the last message the bucket held when the read began (or when none is left to read).
      // Not only "pending 0 on a message": a message about to be read can be removed under the read (a
      // purge by another process: a pruned task, a dropped branch), and then no message ever said so:
      // the open hung while another process purged keys. A check of the consumer every 250 ms ends that.
      const last = info.state.last_seq;
      let seen = 0;
      let check: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve, reject) => {
        check = setInterval(() => {
          consumer.info().then((ci) => {
            if (ci.num_pending === 0 && ci.delivered.stream_seq <= seen) resolve();
          }, () => undefined);
        }, 250);
        consumer
          .consume({
            callback: (m) => {
              try {
                const operation = m.headers?.get('KV-Operation');
                loadEntry(part, m.subject.slice(prefix), m.seq, operation === 'DEL' || operation === 'PURGE' ? undefined : m.data);
              } catch (err) {
                reject(err);
              }
              seen = m.seq;
              if (m.info.pending === 0 || m.seq >= last) resolve();
            },
          })
          .catch(reject);
      }).finally(() => clearInterval(check));
      await consumer.delete().catch(() => undefined);
    }
      const journal: NatsJournal = {
      kind: 'nats',
      wire: {
        nc,
        js,
        jsm,
        joins: () => (joins ??= new Kvm(js).create(`${bucket}_fan`, { history: 1, replicas, storage: 'file' as never, timeout: timeoutMs })),
        tries: () => (tries ??= new Kvm(js).create(`${bucket}_tries`, { history: 1, replicas, storage: 'file' as never, ttl: TRIES_TTL_MS, timeout: timeoutMs })),
        timeoutMs,
        lib: { headers: headers as never, AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, DiscardPolicy } as never,
      },
      durable: true,
      now: options.now ?? Date.now,
      openPipeline: part,
      pipelines: () => [...parts.keys()].filter((n) => n !== '' && parts.get(n)!.size() > 0).sort(),
      close: async () => {
        await Promise.all([...parts.values()].map((p) => p.settled()));
        if (connection === undefined) await nc.close().catch(() => undefined);
      },
    };
    return journal;
  } catch (err) {
    if (connection === undefined) await nc.close().catch(() => undefined);
    throw err;
  }
}

function connectError(err: unknown, where: string): BatonError {
  const info = toErrorInfo(err);
  const auth = /auth/i.test(`${info.name} ${info.message} ${String((err as { code?: unknown })?.code ?? '')}`);
  if (auth) return new BatonError('ERR_TRANSPORT_AUTH', `NATS at ${where} refused the credentials (${info.message}); check user/pass, token, nkey or creds in connectOptions.`, { servers: where }, err);
  return new BatonError('ERR_TRANSPORT_UNREACHABLE', `cannot reach NATS at ${where} (${info.message}); check that nats-server runs there with -js, and the address and port.`, { servers: where }, err);
}
