import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agent, createSystem, isBatonError, memoryJournal, natsJetStream, seededRandom, type Outcome } from '../../system/index.js';
import { natsMissing, startNatsServer, warnNatsMissing, type NatsServer } from '../../testkit/nats-server.js';
import { distStages } from '../support/dist-stages.js';
import { main } from '../../cli/baton.js';

warnNatsMissing();

const CHILD = new URL('../support/dist-child.ts', import.meta.url).pathname;
const SEED = Number(process.env['BATON_KILL_SEED'] ?? Date.now() % 100_000);

/** Hosting processes that ended without being killed by the test: a crash is a bug, reported at the end. */
const crashes: string[] = [];

/** Starts one hosting process; resolves once it has joined. */
function host(url: string, stages: string, kill = false): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, stages, ...(kill ? ['kill'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let ready = false;
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      if (!ready && d.toString().includes('READY')) {
        ready = true;
        resolve(child);
      }
    });
    child.on('exit', (code, signal) => {
      if (!ready) reject(new Error(`host ${stages} ended (${code ?? signal}) before it joined: ${err}`));
      else if (signal !== 'SIGKILL') crashes.push(`host ${stages} (pid ${child.pid}) ended by itself (${code ?? signal}): ${err.slice(-2_000)}`);
    });
  });
}

const killed = (c: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });

describe.skipIf(natsMissing !== '')('a pipeline spread over processes on NATS JetStream', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('runs stages in other processes, shares a stage between two, and reports every outcome to every process', async () => {
    const stages = distStages(agent);
    const a = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const b = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const c = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const pa = await a.joinPipeline<number, number>({ name: 'shared', stages, host: ['parse', 'store'] });
    const pb = await b.joinPipeline<number, number>({ name: 'shared', stages, host: ['check'] });
    const pc = await c.joinPipeline<number, number>({ name: 'shared', stages, host: ['check'] });
    const seenByC: string[] = [];
    pc.onOutcome((o) => seenByC.push(o.id));
    const outcomes: Outcome<number>[] = [];
    pa.onOutcome((o) => outcomes.push(o));
    for (let i = 0; i < 300; i++) expect(await pa.send(i, { id: `s${i}` })).toBe('accepted');
    expect(await pa.send(1, { id: 's1' })).toBe('duplicate');
    await pa.drain();
    expect(outcomes).toHaveLength(300);
    // Every process hears every outcome (C sent nothing): it may hear the last ones a moment after A.
    for (let t = 0; t < 200 && seenByC.length < 300; t++) await new Promise((r) => setTimeout(r, 10));
    expect(new Set(seenByC).size).toBe(300);
    const checkB = pb.stats().stages[0]!.received;
    const checkC = pc.stats().stages[0]!.received;
    expect(checkB + checkC).toBeGreaterThanOrEqual(300);
    expect(Math.min(checkB, checkC), 'both replicas of check took work').toBeGreaterThan(0);
    const byId = new Map(outcomes.map((o) => [o.id, o]));
    expect(byId.get('s3')).toMatchObject({ status: 'completed', output: 7, stage: 'store' });
    const poison = outcomes.filter((o) => o.status === 'dead-lettered').map((o) => o.id).sort();
    expect(poison).toEqual(['s194', 's291', 's97'].sort());
    expect(byId.get('s97')).toMatchObject({ stage: 'check', attempts: 3, error: { code: 'ERR_TASK_FAILED', message: 'poison 194' } });
    expect((await pb.deadLetters()).map((d) => d.id).sort()).toEqual(poison);
    await Promise.all([a.shutdown(), b.shutdown(), c.shutdown()]);
  }, 60_000);

  it('replays a dead letter from any process, and refuses joinPipeline without a NATS journal or with a bad host', async () => {
    let fixed = false;
    const stages = [agent({ name: 'only', retry: { maxAttempts: 1 }, handle: (n: number) => { if (!fixed) throw new Error('bug'); return n; } })];
    const sys = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const p = await sys.joinPipeline<number, number>({ name: 'replayed', stages, host: ['only'] });
    const outcomes: Outcome<number>[] = [];
    p.onOutcome((o) => outcomes.push(o));
    await p.send(5, { id: 'r5' });
    await p.drain();
    expect(outcomes).toMatchObject([{ id: 'r5', status: 'dead-lettered' }]);
    fixed = true;
    expect(await p.replay(['r5', 'nope'])).toBe(1);
    await p.drain();
    expect(outcomes.at(-1)).toMatchObject({ id: 'r5', status: 'completed', output: 5 });
    expect(await p.deadLetters()).toEqual([]);
    await sys.shutdown();

    const plain = createSystem({ logger: false, journal: memoryJournal() });
    const err = await plain.joinPipeline({ name: 'x', stages, host: ['only'] }).catch((e: unknown) => e);
    expect(isBatonError(err) && err.code).toBe('ERR_INVALID_OPTION');
    const nats = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    await expect(nats.joinPipeline({ name: 'y', stages, host: ['nosuch'] })).rejects.toThrow(/host must be a stage of the pipeline \(only\)/);
    await expect(nats.joinPipeline({ name: 'y', stages, host: ['only'], keyPartitions: 0 })).rejects.toThrow(/keyPartitions must be an integer from 1 to 256/);
    const keyed = [agent({ name: 'k', orderByKey: true, handle: (x: number) => x })];
    const k8 = await nats.joinPipeline({ name: 'parts', stages: keyed, host: ['k'], keyPartitions: 8 });
    const other = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    for (const n of [4, 16]) {
      const e = await other.joinPipeline({ name: 'parts', stages: keyed, host: [], keyPartitions: n }).catch((x: unknown) => x);
      expect(isBatonError(e) && e.code, `keyPartitions ${n} beside 8`).toBe('ERR_INVALID_OPTION');
      expect((e as Error).message).toContain('give every process the same keyPartitions');
    }
    void k8;
    await other.shutdown();
    await nats.shutdown();
  }, 60_000);

  it('keeps per-key order at a stage that orders by key, hosted by two processes, through retries and one of them stopping mid-batch', async () => {
    // 'prep' (one process, one at a time) hands the tasks on in send order; 'ordered' runs in two
    // processes, up to 4 tasks at once each, with random delays and a transient failure for every 7th.
    const done: { key: string; n: number; by: string }[] = [];
    const stages = (by: string) => [
      agent({ name: 'prep', handle: (x: { key: string; n: number }) => x }),
      agent({
        name: 'ordered',
        orderByKey: true,
        concurrency: 4,
        retry: { maxAttempts: 3, backoff: { minMs: 5, maxMs: 20 } },
        handle: async (x: { key: string; n: number }, ctx) => {
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 6)));
          if (x.n % 7 === 3 && ctx.attempt === 1) throw new Error('transient');
          done.push({ key: x.key, n: x.n, by });
          return x.n;
        },
      }),
    ];
    const systems = await Promise.all([0, 1, 2].map(async () => createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) })));
    const sender = await systems[0]!.joinPipeline<{ key: string; n: number }, number>({ name: 'keyed', stages: stages('a'), host: ['prep'], keyPartitions: 4 });
    await systems[1]!.joinPipeline({ name: 'keyed', stages: stages('b'), host: ['ordered'], keyPartitions: 4 });
    await systems[2]!.joinPipeline({ name: 'keyed', stages: stages('c'), host: ['ordered'], keyPartitions: 4 });
    const outcomes: Outcome<number>[] = [];
    sender.onOutcome((o) => outcomes.push(o));
    const N = 300;
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
    for (let n = 0; n < N; n++) {
      const key = keys[n % keys.length]!;
      await sender.send({ key, n }, { id: `o${n}`, key });
      if (n === 150) void systems[2]!.shutdown(); // its tasks in hand go back to the server, the other process goes on
    }
    await sender.drain();
    expect(outcomes.filter((o) => o.status !== 'completed').map((o) => [o.id, o.status === 'dead-lettered' && o.error.code, o.status === 'dead-lettered' && o.error.message, o.errors.map((e) => e.error.message)])).toEqual([]);
    expect(outcomes.filter((o) => o.status === 'completed')).toHaveLength(N);
    expect(new Set(done.map((d) => d.by)), 'both processes ran the stage').toEqual(new Set(['b', 'c']));
    for (const key of keys) {
      const ns = done.filter((d) => d.key === key).map((d) => d.n);
      const firsts = ns.filter((n, i) => ns.indexOf(n) === i); // a task given back mid-run may end twice
      expect(firsts, `the tasks of ${key} in the order they ended at 'ordered'`).toEqual([...firsts].sort((x, y) => x - y));
      expect(firsts).toHaveLength(N / keys.length);
    }
    await Promise.all([systems[0]!.shutdown(), systems[1]!.shutdown()]);
  }, 60_000);

  it('charges nothing for the tasks a process gives back when it stops mid-batch (they run in the other process)', async () => {
    // Before the fix, a stopping process's open pull request took each task it had just given back
    // again, up to maxAttempts deliveries in a second, and the other process then dead-lettered it
    // with ERR_PROCESS_DIED (2 runs in 4 here).
    const stages = [agent({ name: 'in', handle: (n: number) => n }), agent({ name: 'work', concurrency: 4, handle: async (n: number) => (await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 6))), n) })];
    const systems = await Promise.all([0, 1, 2].map(async () => createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) })));
    const sender = await systems[0]!.joinPipeline<number, number>({ name: 'handback', stages, host: ['in'] });
    await systems[1]!.joinPipeline({ name: 'handback', stages, host: ['work'] });
    await systems[2]!.joinPipeline({ name: 'handback', stages, host: ['work'] });
    const outcomes: Outcome<number>[] = [];
    sender.onOutcome((o) => outcomes.push(o));
    let stoppedAt = 0;
    for (let n = 0; n < 400; n++) {
      await sender.send(n, { id: `h${n}` });
      if (n === 200) {
        stoppedAt = Date.now();
        void systems[2]!.shutdown();
      }
    }
    await sender.drain();
    expect(outcomes.filter((o) => o.status !== 'completed').map((o) => [o.id, o.status === 'dead-lettered' && o.error.code])).toEqual([]);
    expect(outcomes).toHaveLength(400);
    // No task waited out the ack wait (30 s): a pull request closed early dropped what the client had
    // buffered for it, and the server sent those tasks again only then (2 runs in 6 took 31 s).
    expect(Date.now() - stoppedAt, 'ms from the stop to the last outcome').toBeLessThan(15_000);
    await Promise.all([systems[0]!.shutdown(), systems[1]!.shutdown()]);
  }, 60_000);

  it('keeps the attempts charged in a process that stops: the next process runs the task only as often as maxAttempts allows', async () => {
    // The server counts deliveries, not the failures a process charged: before, a task that had failed
    // twice here ran 3 more times in the next process (5 runs for maxAttempts 3), and its history lost the first two.
    const runs: string[] = [];
    const stages = (by: string) => [
      agent({ name: 'in', handle: (n: number) => n }),
      agent({
        name: 'flaky',
        retry: { maxAttempts: 3, backoff: { minMs: 1_500, maxMs: 1_500, factor: 1, jitter: 0 } },
        handle: (n: number, ctx) => {
          runs.push(`${by}:${ctx.attempt}`);
          throw new Error(`fails ${n}`);
        },
      }),
    ];
    const sys = await Promise.all([0, 1, 2].map(async () => createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) })));
    const sender = await sys[0]!.joinPipeline<number, number>({ name: 'tries', stages: stages('-'), host: [] });
    const outcomes: Outcome<number>[] = [];
    sender.onOutcome((o) => outcomes.push(o));
    await sys[1]!.joinPipeline({ name: 'tries', stages: stages('a'), host: ['in', 'flaky'] });
    await sender.send(7, { id: 'f7' });
    for (let t = 0; t < 400 && runs.length < 2; t++) await new Promise((r) => setTimeout(r, 10));
    expect(runs).toEqual(['a:1', 'a:2']);
    await sys[1]!.shutdown(); // gives the task back while it waits for its third attempt
    await sys[2]!.joinPipeline({ name: 'tries', stages: stages('b'), host: ['in', 'flaky'] });
    await sender.drain();
    expect(runs).toEqual(['a:1', 'a:2', 'b:3']);
    expect(outcomes).toHaveLength(1);
    const dead = outcomes[0]!;
    expect(dead).toMatchObject({ id: 'f7', status: 'dead-lettered', stage: 'flaky', attempts: 3 });
    expect(dead.errors.map((e) => [e.attempt, e.charged, e.error.message])).toEqual([1, 2, 3].map((a) => [a, true, 'fails 7']));
    await Promise.all([sys[0]!.shutdown(), sys[2]!.shutdown()]);
  }, 60_000);

  it('lets tasks given back by three clean stops in a row run in the next process as they would have: not dead-lettered, not one at a time', async () => {
    // A rolling deploy. Each clean give-back is a delivery more on the server; read as crashes, three of
    // them (maxAttempts 3) dead-lettered a task that never failed (ERR_PROCESS_DIED), and each given-back
    // task was a suspect that ran alone.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const seen: { id: string; attempt: number; by: number }[] = [];
    // Runs at once in the last process (a stopped process's runs never end: their handlers wait on).
    let now = 0;
    let most = 0;
    const stages = (by: number) => [
      agent({ name: 'in', handle: (n: number) => n }),
      agent({
        name: 'slow',
        concurrency: 8,
        retry: { maxAttempts: 3 },
        handle: async (n: number, ctx) => {
          seen.push({ id: ctx.taskId, attempt: ctx.attempt, by });
          if (by === 3) most = Math.max(most, ++now);
          await released;
          return n;
        },
      }),
    ];
    const sender = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const p = await sender.joinPipeline<number, number>({ name: 'rolling', stages: stages(-1), host: ['in'] });
    const outcomes: Outcome<number>[] = [];
    p.onOutcome((o) => outcomes.push(o));
    for (let i = 0; i < 4; i++) await p.send(i, { id: `g${i}` });
    for (let round = 0; round < 3; round++) {
      const w = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
      await w.joinPipeline({ name: 'rolling', stages: stages(round), host: ['slow'] });
      const mine = () => seen.filter((x) => x.by === round).length;
      for (let t = 0; t < 500 && mine() < 4; t++) await new Promise((r) => setTimeout(r, 10));
      expect(mine(), `round ${round}: every task running`).toBe(4);
      await w.shutdown({ drainMs: 50 }); // its runs are taken back and the tasks given back, uncharged
    }
    const last = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    await last.joinPipeline({ name: 'rolling', stages: stages(3), host: ['slow'] });
    for (let t = 0; t < 500 && now < 4; t++) await new Promise((r) => setTimeout(r, 10));
    expect(most, 'the given-back tasks run side by side, not alone').toBe(4);
    release();
    await p.drain();
    expect(outcomes.map((o) => [o.id, o.status]).sort()).toEqual([0, 1, 2, 3].map((i) => [`g${i}`, 'completed']));
    expect(seen.every((x) => x.attempt === 1), 'no run was charged').toBe(true);
    await Promise.all([sender.shutdown(), last.shutdown()]);
  }, 60_000);

  it('fans a task out to stages in other processes and joins it once; a dead branch dead-letters the task, and a replay fans it out again', async () => {
    const broken = { fr: true };
    const runs = { en: 0, fr: 0 };
    const stages = [
      agent({ name: 'split', handle: (n: number) => n, route: () => ['en', 'fr'] }),
      agent({ name: 'en', concurrency: 4, handle: (n: number) => (runs.en++, `en ${n}`), route: () => null }),
      agent({ name: 'fr', concurrency: 4, retry: { maxAttempts: 1 }, handle: (n: number) => {
        runs.fr++;
        if (n === 3 && broken.fr) throw new Error('no French for 3');
        return `fr ${n}`;
      }, route: () => null }),
    ];
    const systems = await Promise.all([0, 1, 2].map(async () => createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) })));
    const p = await systems[0]!.joinPipeline<number, { stage: string; output: string }[]>({ name: 'fanned', stages, host: ['split'] });
    await systems[1]!.joinPipeline({ name: 'fanned', stages, host: ['en'] });
    await systems[2]!.joinPipeline({ name: 'fanned', stages, host: ['fr', 'en'] });
    const outcomes: Outcome<{ stage: string; output: string }[]>[] = [];
    p.onOutcome((o) => outcomes.push(o));
    for (let n = 0; n < 50; n++) await p.send(n, { id: `f${n}` });
    await p.drain();
    expect(outcomes).toHaveLength(50);
    expect(runs).toEqual({ en: 50, fr: 50 });
    for (const o of outcomes) {
      const n = Number(o.id.slice(1));
      if (n === 3) {
        expect(o).toMatchObject({ status: 'dead-lettered', stage: 'split', error: { code: 'ERR_TASK_FAILED' } });
        continue;
      }
      expect(o.status, o.id).toBe('completed');
      if (o.status === 'completed') expect([...o.output].sort((a, b) => a.stage.localeCompare(b.stage))).toEqual([{ stage: 'en', output: `en ${n}` }, { stage: 'fr', output: `fr ${n}` }]);
    }
    broken.fr = false;
    expect(await p.replay(['f3'])).toBe(1);
    await p.drain();
    expect(outcomes.at(-1)).toMatchObject({ id: 'f3', status: 'completed' });
    expect(runs).toEqual({ en: 51, fr: 51 }); // the replay fanned f3 out again: both branches ran once more
    await Promise.all(systems.map((x) => x.shutdown()));
  }, 60_000);

  it('lets the CLI list and replay the dead letters of a pipeline spread over processes (status lists it)', async () => {
    let fixed = false;
    const stages = [agent({ name: 'only', orderByKey: true, retry: { maxAttempts: 1 }, handle: (n: number) => { if (!fixed && n % 2 === 1) throw new Error(`odd ${n}`); return n; } })];
    const sys = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const p = await sys.joinPipeline<number, number>({ name: 'clidist', stages, host: ['only'], keyPartitions: 4 });
    const outcomes: Outcome<number>[] = [];
    p.onOutcome((o) => outcomes.push(o));
    for (let n = 0; n < 6; n++) await p.send(n, { id: `c${n}`, key: `k${n}` });
    await p.drain();
    const run = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const code = await main([...argv, '--nats', server.url], (x) => (out += x), (x) => (err += x));
      return { code, out, err };
    };
    const listed = await run('dead-letters', '--pipeline', 'clidist', '--json');
    expect(listed.code, listed.err).toBe(0);
    expect((JSON.parse(listed.out) as { id: string; code: string; lastError: string }[]).map((r) => [r.id, r.code, r.lastError])).toEqual([['c1', 'ERR_TASK_FAILED', 'odd 1'], ['c3', 'ERR_TASK_FAILED', 'odd 3'], ['c5', 'ERR_TASK_FAILED', 'odd 5']]);
    const status = await run('status');
    expect(status.out).toMatch(/clidist\s+0\s+3/);
    fixed = true;
    const replayed = await run('replay', '--pipeline', 'clidist', 'c1', 'c3', 'nope', '--json');
    expect(JSON.parse(replayed.out)).toEqual({ pipeline: 'clidist', replayed: ['c1', 'c3'], notDeadLetters: ['nope'] });
    // The running process picks them up (through the key partitions of its ordered stage).
    while (outcomes.filter((o) => o.status === 'completed').length < 5) await new Promise((r) => setTimeout(r, 20));
    expect(outcomes.filter((o) => o.id === 'c1' || o.id === 'c3').map((o) => o.status)).toEqual(['dead-lettered', 'dead-lettered', 'completed', 'completed']);
    expect((await p.deadLetters()).map((o) => o.id)).toEqual(['c5']);
    await sys.shutdown();
  }, 60_000);

  it('dead-letters no healthy task when the dependency of a stage hosted by two processes is down for a while', async () => {
    const down = { until: Date.now() + 1_500 };
    const calls = { failed: 0 };
    const stages = [
      agent({ name: 'in', handle: (n: number) => n }),
      agent({
        name: 'db',
        concurrency: 2,
        retry: { maxAttempts: 3, backoff: { minMs: 20, maxMs: 100 } },
        breaker: { threshold: 5, backoff: { minMs: 200, maxMs: 400 } },
        handle: async (n: number) => {
          if (Date.now() < down.until) {
            calls.failed++;
            throw new Error('db down');
          }
          return n;
        },
      }),
    ];
    const systems = await Promise.all([0, 1, 2].map(async () => createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) })));
    const sender = await systems[0]!.joinPipeline<number, number>({ name: 'outage', stages, host: ['in'] });
    await systems[1]!.joinPipeline({ name: 'outage', stages, host: ['db'] });
    await systems[2]!.joinPipeline({ name: 'outage', stages, host: ['db'] });
    const outcomes: Outcome<number>[] = [];
    sender.onOutcome((o) => outcomes.push(o));
    for (let i = 0; i < 200; i++) await sender.send(i, { id: `o${i}` });
    await sender.drain();
    expect(calls.failed, 'the outage did meet the stage').toBeGreaterThan(5);
    expect(outcomes.filter((o) => o.status !== 'completed').map((o) => o.id)).toEqual([]);
    expect(outcomes).toHaveLength(200);
    await Promise.all(systems.map((s) => s.shutdown()));
  }, 60_000);

  it('rides out a restart of the NATS server mid-batch', async () => {
    const own = await startNatsServer();
    try {
      const stages = distStages(agent);
      const a = createSystem({ logger: false, journal: await natsJetStream({ servers: own.url, timeoutMs: 20_000 }) });
      const b = createSystem({ logger: false, journal: await natsJetStream({ servers: own.url, timeoutMs: 20_000 }) });
      const pa = await a.joinPipeline<number, number>({ name: 'restart', stages, host: ['parse', 'store'], ackWaitMs: 2_000 });
      await b.joinPipeline({ name: 'restart', stages, host: ['check'], ackWaitMs: 2_000 });
      const outcomes = new Map<string, number>();
      pa.onOutcome((o) => outcomes.set(o.id, (outcomes.get(o.id) ?? 0) + 1));
      let sent = 0;
      const sending = (async () => {
        for (let i = 0; i < 600; i++) {
          await pa.send(i, { id: `r-${i}` });
          sent++;
        }
      })();
      while (sent < 200) await new Promise((r) => setTimeout(r, 5));
      await own.kill(); // with tasks at every stage; the store stays
      await new Promise((r) => setTimeout(r, 500));
      await own.restart();
      await sending;
      await pa.drain();
      expect(outcomes.size).toBe(600);
      expect([...outcomes.values()].every((n) => n === 1)).toBe(true);
      await Promise.all([a.shutdown(), b.shutdown()]);
    } finally {
      await own.stop();
    }
  }, 90_000);

  it(`loses no accepted task and keeps per-key order across 10 rounds of SIGKILL of random hosting processes, fanned-out tasks included (seed ${SEED})`, async () => {
    const N = 2_000;
    const roles = ['parse', 'check', 'check,store'];
    // Every stage orders by key; every tenth output of 'parse' fans out to 'check' and 'store', joined across the processes.
    const children: ChildProcess[] = await Promise.all(roles.map((r) => host(server.url, r, true)));
    const sender = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const p = await sender.joinPipeline<number, number | { stage: string; output: number }[]>({ name: 'dist', stages: distStages(agent, true), host: [], ackWaitMs: 2_000 });
    const outcomes = new Map<string, Outcome<number | { stage: string; output: number }[]>[]>();
    p.onOutcome((o) => outcomes.set(o.id, [...(outcomes.get(o.id) ?? []), o]));
    const random = seededRandom(SEED);
    let kills = 0;
    const killing = (async () => {
      for (let round = 0; round < 10; round++) {
        await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 500)));
        const i = Math.floor(random() * roles.length);
        await killed(children[i]!);
        kills++;
        children[i] = await host(server.url, roles[i]!, true);
      }
    })();
    for (let i = 0; i < N; i++) {
      expect(await p.send(i, { id: `t-${i}`, key: `k${i % 10}` })).toBe('accepted');
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5)); // paced: the kills land mid-batch
    }
    await killing;
    // A hang would say nothing: give the drain a deadline, then say which tasks have no outcome.
    const drained = await Promise.race([p.drain().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 90_000))]);
    const waiting = [...Array(N).keys()].map((i) => `t-${i}`).filter((id) => !outcomes.has(id));
    expect({ drained, crashes, waiting: waiting.slice(0, 20), stats: p.stats().pending }, `seed ${SEED}`).toEqual({ drained: true, crashes: [], waiting: [], stats: 0 });
    expect(kills).toBe(10);
    const missing = [...Array(N).keys()].map((i) => `t-${i}`).filter((id) => !outcomes.has(id));
    const twice = [...outcomes].filter(([, os]) => os.length > 1).map(([id]) => id);
    expect({ missing, twice }, `seed ${SEED}: every accepted task has exactly one outcome`).toEqual({ missing: [], twice: [] });
    const poison = [...Array(N).keys()].filter((i) => (i * 2) % 97 === 0 && i > 0).map((i) => `t-${i}`);
    const dead = [...outcomes.values()].map((os) => os[0]!).filter((o) => o.status === 'dead-lettered');
    expect(poison.filter((id) => outcomes.get(id)![0]!.status !== 'dead-lettered'), 'every poison task is dead-lettered').toEqual([]);
    // Anything else dead-lettered must have been in hand in processes killed maxAttempts times.
    const unexplained = dead.filter((o) => !poison.includes(o.id) && o.error.code !== 'ERR_PROCESS_DIED').map((o) => [o.id, o.error.code]);
    expect(unexplained, 'no healthy task is dead-lettered except for repeated process deaths').toEqual([]);
    const completed = [...outcomes.values()].map((os) => os[0]!).filter((o) => o.status === 'completed');
    const expected = (i: number): unknown => ((i * 2) % 10 === 0 ? [{ stage: 'store', output: i * 2 + 1 }, { stage: 'store', output: i * 2 + 1 }] : i * 2 + 1);
    const wrong = completed.filter((o) => o.status === 'completed' && JSON.stringify(o.output) !== JSON.stringify(expected(Number(o.id.slice(2))))).map((o) => o.id);
    expect(wrong, 'every completed task has its output (both branches of a fanned-out one)').toEqual([]);
    expect(completed.filter((o) => Array.isArray(o.status === 'completed' && o.output)).length, 'fanned-out tasks completed').toBeGreaterThan(300);
    // Per-key order: every stage orders by key, so the tasks of a key complete at 'store' in the order
    // they were sent, and their outcomes arrive so (first arrivals: a redone task's repeated outcome is
    // dropped by the server or here). Dead letters are left out: a poison task's outcome comes from
    // 'check' and may pass the task before it, still at 'store'. So are keys k0 and k5: their tasks fan
    // out, and a join ends when its last branch does.
    const order = [...outcomes].filter(([, os]) => os[0]!.status === 'completed').map(([id]) => Number(id.slice(2)));
    const outOfOrder = [1, 2, 3, 4, 6, 7, 8, 9].filter((k) => {
      const seq = order.filter((i) => i % 10 === k);
      return seq.some((v, j) => j > 0 && v < seq[j - 1]!);
    });
    expect(outOfOrder, `seed ${SEED}: keys whose outcomes came out of send order`).toEqual([]);
    await sender.shutdown();
    await Promise.all(children.map(killed));
  }, 180_000);
});
