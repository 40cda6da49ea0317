import type { Progress, StartInfo, Summary } from './summary.js';

/** Renders progress and the summary for a terminal. Pure: strings in, strings out. */

const n = (x: number): string => x.toLocaleString('en-US');
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
const mb = (bytes: number): string => `${Math.round(bytes / 1048576)} MB`;
const COLUMNS = ['stage', 'received', 'completed', 'failed', 'retried', 'restarts', 'dead', 'inbox', 'breaker'] as const;
const WIDTHS = [10, 9, 10, 7, 8, 9, 6, 6, 8];

function row(cells: readonly string[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(WIDTHS[i]!) : c.padStart(WIDTHS[i]!))).join(' ');
}

function headline(p: Progress): string {
  const s = p.pipeline;
  return `t=${secs(p.elapsedMs)}  sent ${n(p.sent)}/${n(p.docs)}  completed ${n(s.completed)}  dead-lettered ${n(s.deadLettered)}  pending ${n(s.pending)}  rss ${mb(p.rssBytes)}`;
}

/** The TTY view: a headline and one row per stage. */
export function progressTable(p: Progress): string[] {
  return [
    headline(p),
    row(COLUMNS),
    ...p.pipeline.stages.map((s) =>
      row([s.name, n(s.received), n(s.completed), n(s.failed), n(s.retried), n(s.restarts), n(s.deadLettered), n(s.inbox + s.inFlight), s.breaker]),
    ),
  ];
}

/** The log view (not a TTY): one plain line. */
export function progressLine(p: Progress): string {
  const stages = p.pipeline.stages.map((s) => `${s.name} ${s.inbox + s.inFlight}${s.breaker === 'closed' ? '' : ` (breaker ${s.breaker})`}`);
  return `${headline(p)}  waiting: ${stages.join(', ')}`;
}

/** The line printed before the batch starts. */
export function startLine(s: StartInfo): string {
  if (s.journal === 'memory') return MEMORY_NOTE;
  const r = s.resuming;
  if (r !== undefined) {
    return (
      `resuming the batch a crashed run left in ${s.journalPath}: the journal holds ${n(r.pending)} pending tasks (${n(r.runningAtCrash)} were running at the kill) ` +
      `and ${n(r.completed + r.dead)} finished (${n(r.completed)} completed, ${n(r.dead)} dead letters)${s.crashIgnored ? '; --crash-at is ignored when resuming' : ''}`
    );
  }
  return `journal: ${s.journalPath} (SQLite, a fresh batch; results in ${s.storePath})${s.crashAt === undefined ? '' : `; this run kills itself with SIGKILL once ${n(s.crashAt)} documents are stored`}`;
}

export const MEMORY_NOTE = 'note: --memory keeps accepted tasks in memory only: a crash of this process would lose them.';

export function formatSummary(s: Summary): string {
  const perStage = (r: Readonly<Record<string, number>>): string =>
    Object.entries(r)
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(', ') || 'none';
  const o = s.faults.outage;
  const outage = o.startMs === undefined ? 'storage outage never began' : `storage outage ${secs(o.startMs)}-${secs(o.endMs!)} after ${n(o.afterRows)} rows (${n(o.rejected)} writes refused)`;
  const j = s.journalAtStart;
  const lines = [
    `Baton legal pipeline: ${n(s.docs)} documents, seed ${s.seed}, corrupt rate ${(s.corruptRate * 100).toFixed(1)}%`,
    s.journal === 'memory'
      ? 'mode              memory (no journal: a crash would lose the accepted tasks)'
      : `mode              durable: SQLite journal ${s.journalPath}, ${n(s.journalBytes ?? 0)} bytes at the end (${n(s.journalBytesPerDoc ?? 0)} B per document); results in ${s.storePath}`,
    ...(s.journal === 'memory' ? [] : [`recovered         ${n(s.recovered)} tasks pending in the journal at start${s.recovered > 0 ? ', resumed where they stood' : ''}`]),
    ...(j === undefined
      ? []
      : [`resumed           a crashed run's batch: the journal held ${n(j.pending)} pending (${n(j.runningAtCrash)} running at the kill) and ${n(j.completed + j.dead)} finished; finished outcomes are read back from it`]),
    '',
    `sent              ${n(s.sent)}`,
    `completed         ${n(s.completed)}`,
    `dead-lettered     ${n(s.deadLettered)}`,
    ...s.deadLetters.map((d) => `  ${d.stage.padEnd(9)} ${d.code} (${d.cause})`.padEnd(48) + n(d.count).padStart(7)),
    `retries           ${n(s.retries)}  (${perStage(s.retriesByStage)})`,
    `restarts          ${perStage(s.restartsByStage)}`,
    `breaker openings  ${n(s.breakerOpenings)} (${perStage(s.breakerOpeningsByStage)}): ${n(s.breakerOutages)} outage(s), the rest re-opened after a failed probe`,
    `faults injected   ${n(s.faults.transient)} flaky model calls (extract), ${n(s.faults.crash)} worker crashes (classify), ${n(s.faults.hang)} hangs (validate),`,
    `                  ${outage}`,
    `elapsed           ${(s.elapsedMs / 1000).toFixed(2)} s`,
    `throughput        ${n(s.throughput)} docs/s${s.resumed ? ' (outcomes produced by this run)' : ''}`,
    `latency           p50 ${n(s.latencyMs.p50)} ms, p99 ${n(s.latencyMs.p99)} ms, max ${n(s.latencyMs.max)} ms (send to outcome, ${n(s.latencyMs.samples)} documents sent by this run)`,
    `peak RSS          ${n(s.peakRssMb)} MB`,
    ...(s.failure === undefined ? [] : [`PIPELINE FAILED   ${s.failure}`]),
    '',
    'CHECK',
    ...s.checks.flatMap((c) => [`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.name}`, `        ${c.detail}`]),
    '',
    `RESULT: ${s.ok ? 'PASS' : 'FAIL'} (${s.checks.filter((c) => c.pass).length}/${s.checks.length} checks)`,
  ];
  return lines.join('\n');
}
