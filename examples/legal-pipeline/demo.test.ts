import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CORRUPT_RATE, makeDocument } from './documents.js';
import { CorruptDocumentError, parsePdf } from './pdf-sim.js';
import { runDemo } from './run.js';

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

describe('the legal pipeline demo', () => {
  it('accounts for every document under faults: dead letters are exactly the corrupt ones, nothing re-runs upstream', async () => {
    const dead = new Set<string>();
    const summary = await runDemo({
      docs: DOCS,
      seed: SEED,
      db: join(dir, 'journal.db'), // the durable default, in a scratch directory
      // A short outage still opens the store's breaker: it begins at 30% of the batch, whatever its size.
      faults: { hangRate: 0.005, outage: { atFraction: 0.3, durationMs: 1_000 } },
      onOutcome: (o) => {
        if (o.status === 'dead-lettered') dead.add(o.id);
      },
    });
    const corrupt = new Set<string>();
    for (let i = 0; i < DOCS; i++) {
      const doc = makeDocument(SEED, i, DEFAULT_CORRUPT_RATE);
      if (doc.corruption !== null) corrupt.add(doc.id);
    }

    expect(summary.journal).toBe('sqlite');
    expect(summary.sent).toBe(DOCS);
    expect(summary.completed + summary.deadLettered).toBe(summary.sent);
    expect(corrupt.size).toBeGreaterThan(0);
    expect([...dead].sort()).toEqual([...corrupt].sort());
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
    expect(summary.checks.find((c) => c.name.startsWith('no upstream replay'))?.pass).toBe(true);
    expect(summary.ok).toBe(true);
  });
});

describe('the demo killed at 40% and run again', () => {
  it('resumes from the journal and accounts for every document: dead letters are exactly the corrupt ones', async () => {
    const { spawnSync } = await import('node:child_process');
    const main = new URL('./main.ts', import.meta.url).pathname;
    const db = join(dir, 'crash.db');
    const args = ['--import', 'tsx', main, '--docs', String(DOCS), '--seed', String(SEED), '--crash-at', '40%', '--db', db, '--json'];
    const first = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(first.signal, 'the first run kills itself').toBe('SIGKILL');
    const second = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(second.status, second.stderr).toBe(0);
    const summary = JSON.parse(second.stdout.trim().split('\n').pop()!) as Awaited<ReturnType<typeof runDemo>>;
    let corrupt = 0;
    for (let i = 0; i < DOCS; i++) if (makeDocument(SEED, i, DEFAULT_CORRUPT_RATE).corruption !== null) corrupt++;
    expect(summary).toMatchObject({ resumed: true, journal: 'sqlite', sent: DOCS, deadLettered: corrupt, completed: DOCS - corrupt, ok: true });
    expect(summary.recovered).toBeGreaterThan(0);
    expect(summary.checks.map((c) => c.pass)).toEqual([true, true, true, true]);
  }, 60_000);
});
