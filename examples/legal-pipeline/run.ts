import { createSystem, sqliteJournal, type ActorSystem, type AgentPolicyOptions, type Outcome, type StageStats } from '../../system/index.js';
import { legalAgents, type StoredDoc } from './agents.js';
import { Audit, type AuditInput } from './audit.js';
import { DEFAULT_DB, journalBytes, openBatch, PIPELINE, storePath } from './batch.js';
import { DEFAULT_CORRUPT_RATE, docId, docIndex, documents } from './documents.js';
import { DEFAULT_FAULTS, FaultPlan, OutageStore, type FaultOptions } from './faults.js';
import { Latency } from './latency.js';
import { CallLedger } from './ledger.js';
import { SqliteStore } from './sqlite-store.js';
import { MemoryStore, type ResultRow, type ResultStore } from './store.js';
import type { DeadLetterGroup, Progress, StartInfo, Summary } from './summary.js';

export { DEFAULT_DB, storePath } from './batch.js';
export type { DeadLetterGroup, Progress, StartInfo, Summary } from './summary.js';

/** Kills the process with SIGKILL once `at` rows are stored: the crash of --crash-at. */
class CrashAfter implements ResultStore {
  constructor(
    private readonly inner: ResultStore,
    private readonly at: number,
  ) {}
  put(id: string, row: ResultRow): void {
    this.inner.put(id, row);
    if (this.inner.count() >= this.at) process.kill(process.pid, 'SIGKILL');
  }
  count(): number {
    return this.inner.count();
  }
  ids(): Iterable<string> {
    return this.inner.ids();
  }
}

export interface DemoOptions {
  /** Documents in the batch. Optional; defaults to 50,000. */
  readonly docs?: number;
  /** Seeds the documents, the faults and Baton's jitter. Optional; defaults to 42. */
  readonly seed?: number;
  /** Share of corrupt documents. Optional; defaults to 0.032. */
  readonly corruptRate?: number;
  /** Overrides of the fault plan (rates, outage window). Optional; see DEFAULT_FAULTS. */
  readonly faults?: Partial<Omit<FaultOptions, 'seed'>>;
  /** How often `onProgress` is called. Optional; defaults to 250 ms. */
  readonly progressMs?: number;
  readonly onProgress?: (progress: Progress) => void;
  /** Told once, before the first send: the journal, and whether this run resumes a crashed one. Optional. */
  readonly onStart?: (start: StartInfo) => void;
  /** Told the system once it exists, before the pipeline is spawned (main.ts opens the live page with it). Optional. */
  readonly onSystem?: (system: ActorSystem) => void | Promise<void>;
  /** Sees every outcome delivered to this run (tests use it to compare ids). Optional. */
  readonly onOutcome?: (outcome: Outcome<StoredDoc>) => void;
  /**
   * The SQLite journal file (the embedded durable default), or false to keep tasks in memory.
   * Optional; defaults to '.baton/legal-demo.db'. A run starts a new batch there (deleting the old
   * files) unless the journal holds an unfinished one: then it resumes that batch.
   */
  readonly db?: string | false;
  /**
   * Kill this process with SIGKILL once this many documents are stored (a crash in the middle of the
   * batch). Optional. Ignored by a run that resumes a crashed batch.
   */
  readonly crashAt?: number;
}

/** Policies for every stage; the agents override what their work calls for (see agents.ts). */
export const PIPELINE_DEFAULTS: AgentPolicyOptions = {
  retry: { maxAttempts: 3, backoff: { minMs: 20, maxMs: 1_000 } },
  breaker: { threshold: 5, backoff: { minMs: 200, maxMs: 2_000 } },
  timeoutMs: 2_000,
  mailbox: { capacity: 1_000 },
};

/** Runs the legal pipeline over a synthetic batch with faults, and audits the result. */
export async function runDemo(options: DemoOptions = {}): Promise<Summary> {
  const docs = options.docs ?? 50_000;
  const seed = options.seed ?? 42;
  const corruptRate = options.corruptRate ?? DEFAULT_CORRUPT_RATE;
  const faultOptions: FaultOptions = { ...DEFAULT_FAULTS, ...options.faults, seed };
  const db = options.db ?? DEFAULT_DB;
  // Throws BatchMismatchError if the journal holds another batch's unfinished run.
  const atStart = db === false ? undefined : openBatch(db, { docs, seed, corruptRate });
  const resumed = atStart !== undefined;
  const crashAt = resumed ? undefined : options.crashAt;
  const journalAtStart = atStart && { pending: atStart.pending, completed: atStart.completed, dead: atStart.dead, runningAtCrash: atStart.runningAtCrash };
  options.onStart?.({
    journal: db === false ? 'memory' : 'sqlite',
    ...(db === false ? {} : { journalPath: db, storePath: storePath(db) }),
    ...(journalAtStart === undefined ? {} : { resuming: journalAtStart }),
    ...(crashAt === undefined ? {} : { crashAt }),
    crashIgnored: resumed && options.crashAt !== undefined,
  });

  const system = createSystem({ logger: false, random: seed, ...(db === false ? {} : { journal: sqliteJournal(db) }) });
  await options.onSystem?.(system);
  const openings: Record<string, number> = {};
  let outages = 0;
  system.events.on('breaker-opened', (e) => {
    const stage = e.path.slice(e.path.lastIndexOf('/') + 1);
    openings[stage] = (openings[stage] ?? 0) + 1;
    if (e.probes === 0) outages++;
  });

  const start = performance.now();
  const faults = new FaultPlan(faultOptions, docs);
  const rows = db === false ? new MemoryStore() : new SqliteStore(storePath(db));
  const store = new OutageStore(crashAt === undefined ? rows : new CrashAfter(rows, crashAt), faultOptions.outage, docs, start);
  const ledger = new CallLedger(docs);
  const audit = new Audit(docs, ledger, atStart);
  const latency = new Latency(docs);
  const pipe = system.spawnPipeline<string, StoredDoc>({ name: PIPELINE, stages: legalAgents({ faults, store, ledger }), defaults: PIPELINE_DEFAULTS });
  const recovered = pipe.stats().pending;

  const dead = new Map<string, number>();
  const countDead = (o: Outcome<StoredDoc>): void => {
    if (o.status !== 'dead-lettered') return;
    const last = o.errors[o.errors.length - 1]?.error;
    const cause = last === undefined ? 'never ran' : (last.code ?? last.name);
    const key = `${o.stage}\t${o.error?.code ?? '?'}\t${cause}`;
    dead.set(key, (dead.get(key) ?? 0) + 1);
  };
  let delivered = 0;
  pipe.onOutcome((o) => {
    delivered++;
    latency.finished(docIndex(o.id));
    audit.observe(o);
    countDead(o);
    options.onOutcome?.(o);
  });

  let sent = 0;
  let duplicateSends = 0;
  let peakRss = process.memoryUsage.rss();
  const sample = (): void => {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) peakRss = rss;
    options.onProgress?.({ elapsedMs: performance.now() - start, docs, sent, pipeline: pipe.stats(), rssBytes: rss });
  };
  const ticker = setInterval(sample, options.progressMs ?? 250);
  let failure: string | undefined;
  try {
    // Sends go out in windows of 512: with a journal each send resolves once its group commit is
    // on disk, and awaiting them one by one would allow one document per event-loop turn.
    // Each document is sent with its id, so a re-run's sends of documents the journal already
    // holds (pending or finished) come back 'duplicate' and cost nothing.
    let window: Promise<unknown>[] = [];
    for (const doc of documents(seed, docs, corruptRate)) {
      audit.expect(doc);
      if (!audit.wasRecovered(doc.index)) latency.sent(doc.index);
      window.push(
        pipe.send(doc.pdf, { id: doc.id }).then((r) => {
          if (r === 'accepted' || r === 'duplicate') sent++;
          if (r === 'duplicate') duplicateSends++;
        }),
      );
      if (window.length >= 512) {
        await Promise.all(window);
        window = [];
      }
    }
    await Promise.all(window);
    await pipe.drain();
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
  } finally {
    clearInterval(ticker);
  }
  const elapsedMs = performance.now() - start;
  sample();

  // The accounting comes from the journal's records: every document's outcome is read back (those
  // finished before a crash are not delivered again), and the journal's own counts and dead letters.
  let journal: AuditInput['journal'];
  if (system.journal !== undefined) {
    for (let i = 0; i < docs; i++) {
      const before = audit.deadLettered;
      const o = pipe.outcome(docId(i));
      audit.recorded(i, o);
      if (o !== undefined && audit.deadLettered > before) countDead(o);
    }
    const deadIds: string[] = [];
    for (let page; (page = pipe.deadLetters({ limit: 1_000, offset: deadIds.length })).length > 0; ) for (const o of page) deadIds.push(o.id);
    journal = { ...system.journal.openPipeline(PIPELINE).counts(), deadIds };
  }
  const stats = pipe.stats();
  await system.shutdown({ drainMs: 0 });

  const checks = audit.checks({ sent, duplicateSends, stats, journal, store: { count: rows.count(), ids: rows.ids(), repeated: rows instanceof SqliteStore ? rows.repeated : 0 } });
  if (rows instanceof SqliteStore) rows.close();
  if (failure !== undefined) checks.unshift({ name: 'the pipeline ran to the end', pass: false, detail: failure });
  const byStage = (f: (s: StageStats) => number): Record<string, number> => Object.fromEntries(stats.stages.map((s) => [s.name, f(s)]));
  const bytes = db === false ? 0 : journalBytes(db);
  return {
    docs,
    seed,
    corruptRate,
    journal: db === false ? 'memory' : 'sqlite',
    resumed,
    ...(journalAtStart === undefined ? {} : { journalAtStart }),
    recovered,
    ...(db === false ? {} : { journalPath: db, storePath: storePath(db), journalBytes: bytes, journalBytesPerDoc: Math.round(bytes / docs) }),
    sent,
    completed: audit.completed,
    deadLettered: audit.deadLettered,
    deadLetters: groups(dead),
    retries: stats.stages.reduce((n, s) => n + s.retried, 0),
    retriesByStage: byStage((s) => s.retried),
    restartsByStage: byStage((s) => s.restarts),
    breakerOpenings: Object.values(openings).reduce((a, b) => a + b, 0),
    breakerOpeningsByStage: openings,
    breakerOutages: outages,
    faults: { ...faults.injected, outage: store.report() },
    elapsedMs: Math.round(elapsedMs),
    throughput: Math.round((delivered / elapsedMs) * 1000),
    latencyMs: { ...latency.summary(), samples: latency.count },
    peakRssMb: Math.round(peakRss / 1048576),
    stages: stats.stages,
    ...(failure === undefined ? {} : { failure }),
    checks,
    ok: checks.every((c) => c.pass),
  };
}

function groups(dead: Map<string, number>): DeadLetterGroup[] {
  return [...dead]
    .map(([key, count]) => {
      const [stage, code, cause] = key.split('\t') as [string, string, string];
      return { stage, code, cause, count };
    })
    .sort((a, b) => b.count - a.count);
}
