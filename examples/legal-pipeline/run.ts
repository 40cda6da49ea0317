import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSystem, sqliteJournal, type AgentPolicyOptions, type Outcome, type PipelineStats, type StageStats } from '../../src/index.js';
import { legalAgents, type StoredDoc } from './agents.js';
import { Audit, type Check } from './audit.js';
import { DEFAULT_CORRUPT_RATE, docId, docIndex, documents } from './documents.js';
import { DEFAULT_FAULTS, FaultPlan, OutageStore, type FaultOptions, type OutageReport } from './faults.js';
import { CallLedger } from './ledger.js';
import { SqliteStore } from './sqlite-store.js';
import { MemoryStore, type ResultRow, type ResultStore } from './store.js';

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
  /** Sees every outcome as it arrives (tests use it to compare ids). Optional. */
  readonly onOutcome?: (outcome: Outcome<StoredDoc>) => void;
  /**
   * The SQLite journal file (the embedded durable default), or false to keep tasks in memory.
   * Optional; defaults to '.baton/legal-demo.db'. Each run starts a new batch in a new file.
   */
  readonly db?: string | false;
  /**
   * Kill this process with SIGKILL once this many documents are stored (a crash in the middle of the
   * batch). Optional. A later run with the same db resumes the batch from the journal instead.
   */
  readonly crashAt?: number;
}

export const DEFAULT_DB = '.baton/legal-demo.db';

/** Removes the journal file and its WAL companions, so a run starts a fresh batch. */
function freshJournal(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  for (const base of [path, storePath(path)]) for (const f of [base, `${base}-wal`, `${base}-shm`]) rmSync(f, { force: true });
}

/** The store agent's own SQLite file, next to the journal. */
export const storePath = (db: string): string => db.replace(/(\.db)?$/, '-store.db');

/** A journal left behind by a crashed run still holds unfinished documents of the batch. */
function crashedBatch(db: string): boolean {
  if (!existsSync(db)) return false;
  const journal = sqliteJournal(db);
  try {
    return journal.pipelines().includes('legal') && journal.openPipeline('legal').counts().pending > 0;
  } finally {
    journal.close();
  }
}

function journalBytes(path: string): number {
  return [path, `${path}-wal`].reduce((n, f) => n + (existsSync(f) ? statSync(f).size : 0), 0);
}

export interface Progress {
  readonly elapsedMs: number;
  readonly docs: number;
  readonly sent: number;
  readonly pipeline: PipelineStats;
  readonly rssBytes: number;
}

export interface DeadLetterGroup {
  readonly stage: string;
  /** Baton's reason code (ERR_TASK_FAILED, ERR_TIMEOUT, ...). */
  readonly code: string;
  /** The code of the error the handler threw (ERR_PDF_CHECKSUM, ...). */
  readonly cause: string;
  readonly count: number;
}

export interface Summary {
  readonly docs: number;
  readonly seed: number;
  readonly corruptRate: number;
  readonly journal: 'sqlite' | 'memory';
  /** This run resumed a batch that a crashed run left in the journal. */
  readonly resumed: boolean;
  /** Unfinished tasks found in the journal at start. */
  readonly recovered: number;
  /** The journal file, when durable. */
  readonly journalPath?: string;
  /** Journal file size at the end divided by the documents (completed tasks are kept 24 h). */
  readonly journalBytesPerDoc?: number;
  readonly sent: number;
  readonly completed: number;
  readonly deadLettered: number;
  readonly deadLetters: readonly DeadLetterGroup[];
  readonly retries: number;
  readonly retriesByStage: Readonly<Record<string, number>>;
  readonly restartsByStage: Readonly<Record<string, number>>;
  /** 'breaker-opened' events: outages plus re-openings after failed probes. */
  readonly breakerOpenings: number;
  readonly breakerOpeningsByStage: Readonly<Record<string, number>>;
  /** Openings from closed (each one an outage seen by a stage). */
  readonly breakerOutages: number;
  readonly faults: { readonly transient: number; readonly crash: number; readonly hang: number; readonly outage: OutageReport };
  readonly elapsedMs: number;
  readonly throughput: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly peakRssMb: number;
  readonly stages: readonly StageStats[];
  /** Set if the pipeline itself failed (a stage escalated past the pipeline's intensity). */
  readonly failure?: string;
  readonly checks: readonly Check[];
  readonly ok: boolean;
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
  const resumed = db !== false && crashedBatch(db);
  if (db !== false && !resumed) freshJournal(db);
  const system = createSystem({ logger: false, random: seed, ...(db === false ? {} : { journal: sqliteJournal(db) }) });
  const openings: Record<string, number> = {};
  let outages = 0;
  system.events.on('breaker-opened', (e) => {
    const stage = e.path.slice(e.path.lastIndexOf('/') + 1);
    openings[stage] = (openings[stage] ?? 0) + 1;
    if (e.probes === 0) outages++;
  });

  const start = performance.now();
  const faults = new FaultPlan(faultOptions);
  const rows = db === false ? new MemoryStore() : new SqliteStore(storePath(db));
  const crashAt = resumed ? undefined : options.crashAt;
  const store = new OutageStore(crashAt === undefined ? rows : new CrashAfter(rows, crashAt), faultOptions.outage, docs, start);
  const ledger = new CallLedger(docs);
  const audit = new Audit(docs, ledger);
  const pipe = system.spawnPipeline<string, StoredDoc>({ name: 'legal', stages: legalAgents({ faults, store, ledger }), defaults: PIPELINE_DEFAULTS });
  const recovered = pipe.stats().pending;
  if (resumed) audit.resumed = true;

  const sentAt = new Float64Array(docs);
  const latency = new Float64Array(docs);
  const dead = new Map<string, number>();
  const countDead = (o: Outcome<StoredDoc>): void => {
    if (o.status !== 'dead-lettered') return;
    const last = o.errors[o.errors.length - 1]?.error;
    const cause = last === undefined ? 'never ran' : (last.code ?? last.name);
    const key = `${o.stage}\t${o.error?.code ?? '?'}\t${cause}`;
    dead.set(key, (dead.get(key) ?? 0) + 1);
  };
  pipe.onOutcome((o) => {
    const i = docIndex(o.id);
    latency[i] = performance.now() - sentAt[i]!;
    audit.observe(o);
    countDead(o);
    options.onOutcome?.(o);
  });

  let sent = 0;
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
    let window: Promise<unknown>[] = [];
    for (const doc of documents(seed, docs, corruptRate)) {
      audit.expect(doc);
      sentAt[doc.index] = performance.now();
      // 'duplicate': the journal already holds this document from the crashed run; it counts as sent.
      window.push(pipe.send(doc.pdf, { id: doc.id }).then((r) => (r === 'accepted' || r === 'duplicate') && sent++));
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
  // Documents finished by the crashed run are not delivered again: read their outcomes from the journal.
  if (resumed) {
    for (let i = 0; i < docs; i++) {
      if (audit.hasOutcome(i)) continue;
      const earlier = pipe.outcome(docId(i));
      audit.observeEarlier(earlier);
      if (earlier !== undefined) countDead(earlier);
    }
  }
  const stats = pipe.stats();
  await system.shutdown({ drainMs: 0 });

  const checks = audit.checks(sent, stats, rows.count());
  if (rows instanceof SqliteStore) rows.close();
  if (failure !== undefined) checks.unshift({ name: 'the pipeline ran to the end', pass: false, detail: failure });
  const byStage = (f: (s: StageStats) => number): Record<string, number> => Object.fromEntries(stats.stages.map((s) => [s.name, f(s)]));
  const sorted = latency.slice(0, sent).sort();
  return {
    docs,
    seed,
    corruptRate,
    journal: db === false ? 'memory' : 'sqlite',
    resumed,
    recovered,
    ...(db === false ? {} : { journalPath: db, journalBytesPerDoc: Math.round(journalBytes(db) / docs) }),
    sent,
    completed: audit.completed,
    deadLettered: audit.deadLettered,
    deadLetters: [...dead].map(([key, count]) => {
      const [stage, code, cause] = key.split('\t') as [string, string, string];
      return { stage, code, cause, count };
    }).sort((a, b) => b.count - a.count),
    retries: stats.stages.reduce((n, s) => n + s.retried, 0),
    retriesByStage: byStage((s) => s.retried),
    restartsByStage: byStage((s) => s.restarts),
    breakerOpenings: Object.values(openings).reduce((a, b) => a + b, 0),
    breakerOpeningsByStage: openings,
    breakerOutages: outages,
    faults: { ...faults.injected, outage: store.report() },
    elapsedMs: Math.round(elapsedMs),
    throughput: Math.round((sent / elapsedMs) * 1000),
    latencyMs: { p50: round1(percentile(sorted, 0.5)), p99: round1(percentile(sorted, 0.99)), max: round1(sorted[sorted.length - 1] ?? 0) },
    peakRssMb: Math.round(peakRss / 1048576),
    stages: stats.stages,
    ...(failure === undefined ? {} : { failure }),
    checks,
    ok: checks.every((c) => c.pass),
  };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
