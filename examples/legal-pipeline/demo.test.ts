import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { sqliteJournal } from '../../system/index.js';
import { DEFAULT_CORRUPT_RATE, makeDocument } from './documents.js';
import { CorruptDocumentError, parsePdf } from './pdf-sim.js';
import { runDemo, storePath, type Summary } from './run.js';

const DOCS = 2_000;
const SEED = 42;
const dir = mkdtempSync(join(tmpdir(), 'baton-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('synthetic documents', () => {
  it('are the same for the same seed and index, and corrupt ones never parse', () => {
    expect(makeDocument(SEED, 7).pdf).toBe(makeDocument(SEED, 7).pdf);
    expect(makeDocument(SEED, 7).pdf).not.toBe(makeDocument(SEED + 1, 7).pdf);
    for (let i = 0; i < 300; i++) {
      const doc = makeDocument(SEED, i, 0.2);
      if (doc.corruption === null) expect(parsePdf(doc.pdf).id).toBe(doc.id);
      else expect(() => parsePdf(doc.pdf)).toThrow(CorruptDocumentError);
    }
  });
});

const corruptIds = (): string[] => {
  const ids: string[] = [];
  for (let i = 0; i < DOCS; i++) {
    const doc = makeDocument(SEED, i, DEFAULT_CORRUPT_RATE);
    if (doc.corruption !== null) ids.push(doc.id);
  }
  return ids;
};

describe('the legal pipeline demo', () => {
  it.each([
    ['in memory', false as const],
    ['on the durable SQLite journal', 'journal.db'],
  ])('%s, accounts for every document under faults: dead letters are exactly the corrupt ones, nothing re-runs upstream', async (_, file) => {
    const dead: string[] = [];
    const summary = await runDemo({
      docs: DOCS,
      seed: SEED,
      db: file === false ? false : join(dir, file), // the durable default, in a scratch directory
      // A short outage still opens the store's breaker: it begins at 30% of the batch, whatever its size.
      faults: { hangRate: 0.005, outage: { atFraction: 0.3, durationMs: 1_000 } },
      onOutcome: (o) => {
        if (o.status === 'dead-lettered') dead.push(o.id);
      },
    });

    expect(summary.journal).toBe(file === false ? 'memory' : 'sqlite');
    expect(summary.resumed).toBe(false);
    expect(summary.sent).toBe(DOCS);
    expect(summary.completed + summary.deadLettered).toBe(summary.sent);
    const corrupt = corruptIds();
    expect(corrupt.length).toBeGreaterThan(0);
    expect(dead.sort()).toEqual(corrupt);
    expect(summary.deadLetters.every((d) => d.stage === 'ingest' && d.cause.startsWith('ERR_PDF_'))).toBe(true);

    // Faults happened and were survived: retries, a crash-restart, a timeout, an opened breaker.
    expect(summary.retries).toBeGreaterThan(0);
    expect(summary.retriesByStage['extract']).toBeGreaterThanOrEqual(summary.faults.transient);
    expect(summary.faults.crash).toBeGreaterThan(0);
    expect(summary.faults.hang).toBeGreaterThan(0);
    expect(summary.retriesByStage['validate']).toBe(summary.faults.hang);
    expect(summary.faults.outage.startMs).toBeDefined();
    expect(summary.breakerOpeningsByStage['store']).toBeGreaterThanOrEqual(1);
    expect(summary.breakerOutages).toBeGreaterThanOrEqual(1);

    for (const check of summary.checks) expect(check.pass, `${check.name}: ${check.detail}`).toBe(true);
    expect(summary.checks).toHaveLength(file === false ? 4 : 5); // durable runs also check the journal's records
    expect(summary.checks.find((c) => c.name.startsWith('no upstream replay'))?.pass).toBe(true);
    expect(summary.ok).toBe(true);
  });
});

describe('the demo killed at 40% and run again', () => {
  it('resumes from the journal and accounts for every document: dead letters are exactly the corrupt ones', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const db = join(dir, 'crash', 'j.db');
    const args = ['--import', 'tsx', 'examples/legal-pipeline/main.ts', '--docs', String(DOCS), '--seed', String(SEED), '--crash-at', '40%', '--db', db, '--json'];
    const run = () => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 30_000 });

    const first = run();
    expect(first.signal, `the first run kills itself; stderr: ${first.stderr}`).toBe('SIGKILL');
    expect(first.stdout).toBe('');
    const second = run();
    expect(second.signal, 'the resumed run does not crash again').toBe(null);
    expect(second.status, second.stderr).toBe(0);
    const summary = JSON.parse(second.stdout) as Summary;
    const corrupt = corruptIds();
    expect(summary).toMatchObject({ resumed: true, journal: 'sqlite', sent: DOCS, deadLettered: corrupt.length, completed: DOCS - corrupt.length, ok: true });
    expect(summary.recovered).toBeGreaterThan(0);
    expect(summary.recovered).toBe(summary.journalAtStart?.pending);
    // The crashed run had finished part of the batch; those outcomes came from the journal, not a re-run.
    expect(summary.journalAtStart!.completed + summary.journalAtStart!.dead).toBeGreaterThan(0);
    for (const check of summary.checks) expect(check.pass, `${check.name}: ${check.detail}`).toBe(true);
    expect(summary.checks).toHaveLength(5);

    // From the files themselves: the journal's dead letters are exactly the corrupt documents, every
    // document has one finished record, and the result table holds each completed document once.
    const journal = sqliteJournal(db);
    try {
      const pj = journal.openPipeline('legal');
      expect(pj.counts()).toEqual({ pending: 0, completed: DOCS - corrupt.length, dead: corrupt.length });
      expect(pj.deadLetters(DOCS, 0).map((o) => o.id).sort()).toEqual(corrupt);
    } finally {
      journal.close();
    }
    const store = new Database(storePath(db), { readonly: true });
    try {
      const ids = store.prepare('SELECT id FROM results ORDER BY id').pluck().all() as string[];
      const corruptSet = new Set(corrupt);
      expect(ids).toHaveLength(DOCS - corrupt.length);
      expect(ids.some((id) => corruptSet.has(id))).toBe(false);
    } finally {
      store.close();
    }
  }, 60_000);
});

describe('the demo command line', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const demo = (...flags: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'examples/legal-pipeline/main.ts', ...flags], { cwd: root, encoding: 'utf8', timeout: 30_000 });

  it.each([
    [['--docs', '-5'], "--docs must be a whole number >= 1; got '-5'."],
    [['--docs', '0x10'], "--docs must be a whole number >= 1; got '0x10'."],
    [['--docs', '1e3'], "--docs must be a whole number >= 1; got '1e3'."],
    [['--corrupt-rate', '2'], "--corrupt-rate must be a number between 0 and 1; got '2'."],
  ])('refuses %j with exit code 2, the flag named and the usage', (flags, message) => {
    const r = demo(...flags);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stderr).toContain('--crash-at P');
  });
});

describe('the demo with --observe', () => {
  it('hands its system to onSystem before the batch, and the live page it serves closes with the demo', async () => {
    let url = '';
    let pipelinesAtStart = -1;
    const summary = await runDemo({
      docs: 200,
      seed: SEED,
      db: false,
      onSystem: async (system) => {
        url = (await system.observe()).url;
        pipelinesAtStart = system.snapshot().pipelines.length;
      },
    });
    expect(summary.checks.filter((c) => !c.pass)).toEqual([]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(pipelinesAtStart).toBe(0); // told before the pipeline was spawned
    await expect(fetch(`${url}snapshot`)).rejects.toThrow(); // closed at the demo's shutdown
  }, 60_000);
});
