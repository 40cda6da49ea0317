import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, natsJetStream, type Journal } from '../../system/index.js';
import { encode } from '../../src/codec.js';
import { collect } from '../support/helpers.js';
import { main } from '../../cli/baton.js';
import { natsMissing, startNatsServer, warnNatsMissing, type NatsServer } from '../../testkit/nats-server.js';

warnNatsMissing();

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isBatonError(err) ? err.code : `not a BatonError: ${String(err)}`;
  }
  return undefined;
}

const accept = (id: string, seq: number) => ({ op: 'accept' as const, id, seq, key: undefined, stage: 's1', payload: encode({ id }, 'test') });

describe.skipIf(natsMissing !== '')('natsJetStream()', () => {
  let server: NatsServer;
  let n = 0;
  const bucket = () => `nj${n++}`;
  const opened: Journal[] = [];
  const open = async (b: string): Promise<Journal> => {
    const j = await natsJetStream({ servers: server.url, bucket: b, timeoutMs: 3_000 });
    opened.push(j);
    return j;
  };
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await Promise.all(opened.map((j) => Promise.resolve(j.close()).catch(() => undefined)));
    await server?.stop();
  });

  it('refuses bad options with ERR_INVALID_OPTION, naming the option', async () => {
    expect(await codeOf(natsJetStream(undefined as never))).toBe('ERR_INVALID_OPTION');
    expect(await codeOf(natsJetStream({ servers: [] }))).toBe('ERR_INVALID_OPTION');
    expect(await codeOf(natsJetStream({ servers: server.url, bucket: 'has.dot' }))).toBe('ERR_INVALID_OPTION');
    expect(await codeOf(natsJetStream({ servers: server.url, replicas: 2 }))).toBe('ERR_INVALID_OPTION');
    expect(await codeOf(natsJetStream({ servers: server.url, timeoutMs: 0 }))).toBe('ERR_INVALID_OPTION');
    await expect(natsJetStream({ servers: server.url, bukket: 'x' } as never)).rejects.toThrow(/did you mean 'bucket'/);
  });

  it('says ERR_TRANSPORT_UNREACHABLE, naming the address, when no server answers', async () => {
    const err = await natsJetStream({ servers: 'nats://127.0.0.1:1' }).catch((e: unknown) => e);
    expect(isBatonError(err) && err.code).toBe('ERR_TRANSPORT_UNREACHABLE');
    expect(String((err as Error).message)).toContain('nats://127.0.0.1:1');
  });

  it('keeps tasks across journals on the same bucket, and each pipeline apart', async () => {
    const b = bucket();
    const first = await open(b);
    await first.openPipeline('a').commit([accept('x', 1), accept('y', 2)]);
    await first.openPipeline('b.c:d').commit([accept('x', 1), { op: 'complete', id: 'x', stage: 's1', attempts: 1, output: encode(7, 't'), at: 5 }]);
    await first.close();
    const second = await open(b);
    expect(second.pipelines()).toEqual(['a', 'b.c:d']);
    expect(second.openPipeline('a').counts()).toEqual({ pending: 2, completed: 0, dead: 0 });
    expect(second.openPipeline('a').lastSeq()).toBe(2);
    expect(second.openPipeline('b.c:d').outcome('x')).toMatchObject({ status: 'completed', finishedAt: 5 });
  });

  it('opens a bucket that another process writes all the time: the load ends at what the bucket held when it began', async () => {
    const b = bucket();
    const busy = await open(b);
    const pj = busy.openPipeline('busy');
    await pj.commit([accept('seed', 1)]);
    let writing = true;
    let seq = 1;
    // Four writers, commits one after another, each a new key, then its purge: the bucket never stands
    // still while the other opens, and messages the load was about to read are removed under it.
    const writer = Promise.all([0, 1, 2, 3].map(async (k) => {
      const part = busy.openPipeline(`busy${k}`);
      while (writing) {
        const id = `w${++seq}`;
        await part.commit([accept(id, seq)]);
        await part.commit([{ op: 'drop', id }]); // a purge: the key's messages go
      }
    }));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const other = await Promise.race([open(b), new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
    writing = false;
    await writer;
    expect(other, 'the second journal opened within 10 s').toBeDefined();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(other!.openPipeline('busy').status('seed')).toBe('pending');
  });

  it('prunes completed tasks from the bucket, not only from memory', async () => {
    const b = bucket();
    const first = await open(b);
    const pj = first.openPipeline('p');
    await pj.commit([accept('old', 1), accept('new', 2), { op: 'complete', id: 'old', stage: 's1', attempts: 1, output: encode(1, 't'), at: 100 }, { op: 'complete', id: 'new', stage: 's1', attempts: 1, output: encode(2, 't'), at: 900 }]);
    expect(await pj.pruneCompleted(500)).toBe(1);
    await first.close();
    const again = (await open(b)).openPipeline('p');
    expect(again.status('old')).toBeUndefined();
    expect(again.status('new')).toBe('completed');
    // A pruned id can be accepted again (its key held a purge marker).
    await again.commit([accept('old', 3)]);
    expect(again.status('old')).toBe('pending');
  });

  it('notices a second process writing the same pipeline: the stale one gets ERR_TRANSPORT_CONFLICT and its pipeline fails', async () => {
    const b = bucket();
    const stale = await open(b);
    await stale.openPipeline('p').commit([accept('t1', 1)]);
    const fresh = await open(b); // another process took the pipeline over
    await fresh.openPipeline('p').commit([{ op: 'fail', id: 't1', attempts: 1, errors: encode([], 't') }]);
    expect(await codeOf(Promise.resolve(stale.openPipeline('p').commit([{ op: 'fail', id: 't1', attempts: 2, errors: encode([], 't') }])))).toBe('ERR_TRANSPORT_CONFLICT');
    // The winner's write stands.
    expect((await open(b)).openPipeline('p').task('t1')?.attempts).toBe(1);
  });

  it('fails the pipeline of the stale process with ERR_TRANSPORT_CONFLICT when it runs on', async () => {
    const b = bucket();
    const journal = await open(b);
    const system = createSystem({ logger: false, journal });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's1', handle: async (x: number) => (await gate, x) })] });
    await pipe.send(1, { id: 'one' });
    await new Promise((r) => setTimeout(r, 50));
    const other = await open(b);
    await other.openPipeline('p').commit([{ op: 'fail', id: 'one', attempts: 1, errors: encode([], 't') }]);
    const outcomes = collect(pipe);
    release();
    await pipe.drain().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect(pipe.stats().status).toBe('failed');
    expect(outcomes).toEqual([]); // no outcome was reported that the bucket does not hold
    await system.shutdown();
  });

  it('refuses a key that is not a Baton record with ERR_JOURNAL_CORRUPT, naming the key; keys of other programs are left alone', async () => {
    const b = bucket();
    const j = await open(b);
    await j.openPipeline('p').commit([accept('t1', 1)]);
    await j.close();
    const { connect } = await import('@nats-io/transport-node');
    const { Kvm } = await import('@nats-io/kv');
    const nc = await connect({ servers: server.url });
    const kv = await new Kvm(nc).open(b);
    await kv.put('someone.elses.key', 'hello');
    expect((await open(b)).openPipeline('p').counts().pending).toBe(1);
    const key = `${Buffer.from('p').toString('base64url')}.t.${Buffer.from('t1').toString('base64url')}`;
    await kv.put(key, 'not msgpack of a record');
    const err = await open(b).catch((e: unknown) => e);
    expect(isBatonError(err) && err.code).toBe('ERR_JOURNAL_CORRUPT');
    expect(String((err as Error).message)).toContain(key);
    await nc.close();
  });

  it('opens read-only for the CLI: a missing bucket is refused and created nowhere, writes are refused, reads work', async () => {
    expect(await codeOf(natsJetStream({ servers: server.url, bucket: 'never-made', readonly: true, timeoutMs: 3_000 }))).toBe('ERR_INVALID_OPTION');
    const probe = await natsJetStream({ servers: server.url, bucket: bucket(), timeoutMs: 3_000 });
    opened.push(probe);
    const jsm = await import('@nats-io/jetstream').then((m) => m.jetstreamManager(probe.wire.nc as never));
    expect(await jsm.streams.info('KV_never-made').then(() => 'made', () => 'absent')).toBe('absent');

    const b = bucket();
    const system = createSystem({ logger: false, journal: await open(b) });
    const pipe = system.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'parse', handle: (x: number) => { if (x < 0) throw new Error(`corrupt ${x}`); return x; }, retry: { maxAttempts: 1 } })] });
    for (const x of [1, -2, 3]) await pipe.send(x, { id: `doc${x}` });
    await pipe.drain();
    await system.shutdown();

    const ro = await natsJetStream({ servers: server.url, bucket: b, readonly: true, timeoutMs: 3_000 });
    opened.push(ro);
    expect(ro.openPipeline('legal').counts()).toEqual({ pending: 0, completed: 2, dead: 1 });
    let code: string | undefined;
    try {
      void ro.openPipeline('legal').commit([{ op: 'replay', id: 'doc-2' }]);
    } catch (err) {
      code = isBatonError(err) ? err.code : 'other';
    }
    expect(code).toBe('ERR_JOURNAL_READONLY');

    // The CLI reads it with --nats: status, dead-letters, top --once; replay is sent to the system instead.
    const cli = async (...args: string[]) => {
      let out = '';
      let err = '';
      const c = await main(args, (x) => (out += x), (x) => (err += x));
      return { code: c, out, err };
    };
    const status = await cli('status', '--nats', server.url, '--bucket', b, '--json');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.out)).toMatchObject([{ pipeline: 'legal', pending: 0, completed: 2, dead: 1 }]);
    const dead = await cli('dead-letters', '--nats', server.url, '--bucket', b, '--json');
    expect((JSON.parse(dead.out) as { id: string }[]).map((d) => d.id)).toEqual(['doc-2']);
    const top = await cli('top', '--nats', server.url, '--bucket', b, '--once');
    expect(top.out).toMatch(/pipeline legal\s+pending 0\s+completed 2\s+dead-lettered 1/);
    const replay = await cli('replay', '--nats', server.url, '--bucket', b, 'doc-2');
    expect(replay.code).toBe(2);
    expect(replay.err).toMatch(/use pipeline\.replay\(ids\)/);
    expect((await cli('status', '--nats', server.url, '--bucket', 'nope')).err).toMatch(/no journal bucket 'nope'/);
    expect((await cli('status', '--nats', server.url, '--db', 'x.db')).code).toBe(2);
  });
});

describe.skipIf(natsMissing !== '')('natsJetStream() against a server that needs credentials or lacks JetStream', () => {
  const servers: NatsServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('says ERR_TRANSPORT_AUTH for a wrong password, and works with the right one passed through connectOptions', async () => {
    const server = await startNatsServer(['--user', 'baton', '--pass', 's3cret']);
    servers.push(server);
    expect(await codeOf(natsJetStream({ servers: server.url, connectOptions: { user: 'baton', pass: 'wrong' } }))).toBe('ERR_TRANSPORT_AUTH');
    const j = await natsJetStream({ servers: server.url, connectOptions: { user: 'baton', pass: 's3cret' } });
    await j.openPipeline('p').commit([accept('a', 1)]);
    expect(j.openPipeline('p').status('a')).toBe('pending');
    await j.close();
  });

  it('says ERR_TRANSPORT_UNAVAILABLE for a server that runs without JetStream', async () => {
    const server = await startNatsServer([], { jetstream: false });
    servers.push(server);
    const err = await natsJetStream({ servers: server.url, timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(isBatonError(err) && err.code).toBe('ERR_TRANSPORT_UNAVAILABLE');
    expect(String((err as Error).message)).toMatch(/-js/);
  });
});

describe.skipIf(natsMissing !== '')('a pipeline journaled on NATS when the server restarts mid-batch', () => {
  it('rides out the restart: every accepted task completes once and the bucket holds them all', async () => {
    const server = await startNatsServer();
    try {
      const journal = await natsJetStream({ servers: server.url, bucket: 'restart', timeoutMs: 20_000 });
      const system = createSystem({ logger: false, journal });
      const runs = new Map<number, number>();
      const pipe = system.spawnPipeline<number, number>({
        name: 'p',
        stages: [agent({ name: 'a', concurrency: 8, handle: async (x: number) => (await new Promise((r) => setTimeout(r, 1)), runs.set(x, (runs.get(x) ?? 0) + 1), x + 1) })],
      });
      const outcomes = collect(pipe);
      let accepted = 0;
      const sending = (async () => {
        for (let i = 0; i < 1_500; i++) if ((await pipe.send(i, { id: `t${i}` })) === 'accepted') accepted++;
      })();
      while (accepted < 300) await new Promise((r) => setTimeout(r, 5));
      await server.kill(); // the server dies with writes in flight; its store stays
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();
      await sending;
      await pipe.drain();
      expect(pipe.stats().status).toBe('running');
      expect(accepted).toBe(1_500);
      expect(new Set(outcomes.map((o) => o.id)).size).toBe(1_500);
      expect(outcomes.every((o) => o.status === 'completed')).toBe(true);
      await system.shutdown();
      const after = await natsJetStream({ servers: server.url, bucket: 'restart' });
      expect(after.openPipeline('p').counts()).toEqual({ pending: 0, completed: 1_500, dead: 0 });
      await after.close();
    } finally {
      await server.stop();
    }
  }, 60_000);
});
