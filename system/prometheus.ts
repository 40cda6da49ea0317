import type { PipelineStats } from '../supervisors/pipeline-types.js';
import { RUN_BUCKETS, type StageHistogram } from './run-timings.js';

/** What `system.snapshot()` returns: the system's pipelines, actors and supervisors at one instant. */
export interface SystemSnapshot {
  /** The system clock's reading when the snapshot was taken. */
  readonly at: number;
  readonly pipelines: readonly PipelineStats[];
  /** Plain actors and supervisors by address, with whether they ended for good. */
  readonly actors: readonly { readonly path: string; readonly terminated: boolean }[];
  readonly supervisors: readonly { readonly path: string; readonly terminated: boolean }[];
}

/**
 * One metric family, as data: what `prometheusText` renders and `promClientMetrics` hands to a
 * prom-client registry. A histogram's samples carry their own metric names (`_bucket`, `_sum`, `_count`).
 */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly samples: { readonly labels: Record<string, string>; readonly value: number; readonly metricName?: string }[];
}
type Family = MetricFamily;

const BREAKER = { closed: 0, open: 1, probing: 2 } as Record<string, number>;
const STAGE_STATUS = { starting: 0, running: 1, suspended: 2, terminated: 3 } as Record<string, number>;

/** Run times and times in inbox per stage, when the system keeps them (createSystem({ timings: true })). */
export interface StageTimes {
  readonly run: ReadonlyMap<string, Readonly<StageHistogram>>;
  readonly queued: ReadonlyMap<string, Readonly<StageHistogram>>;
}

/**
 * A snapshot in the Prometheus text exposition format (version 0.0.4), labelled by pipeline and
 * stage only (cardinality: pipelines x stages, plus x dead-letter codes for one family; never task
 * ids or keys). Counters count since the pipeline was spawned in this process.
 */
export function prometheusText(snapshot: SystemSnapshot, times?: StageTimes): string {
  const lines: string[] = [];
  for (const f of metricFamilies(snapshot, times)) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) lines.push(`${s.metricName ?? f.name}${labels(s.labels)} ${s.value}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Every family, with its samples from `snapshot` (and run-time histograms from `runTimes`, if the
 * system keeps them). The list of families is the same for every snapshot, even an empty one: a
 * registry can learn their names once.
 */
export function metricFamilies(snapshot: SystemSnapshot, times?: StageTimes): MetricFamily[] {
  const families: Family[] = [];
  const family = (name: string, type: Family['type'], help: string): Family['samples'] => {
    const f: Family = { name: `baton_${name}`, help, type, samples: [] };
    families.push(f);
    return f.samples;
  };
  const accepted = family('pipeline_tasks_accepted_total', 'counter', 'Tasks a pipeline accepted.');
  const completed = family('pipeline_tasks_completed_total', 'counter', 'Tasks that ended completed.');
  const dead = family('pipeline_tasks_dead_lettered_total', 'counter', 'Tasks that ended as dead letters, by the stage where they ended and the code.');
  const pending = family('pipeline_tasks_pending', 'gauge', 'Accepted tasks without an outcome yet.');
  const lagOps = family('journal_queued_ops', 'gauge', 'Journal writes waiting for the next commit.');
  const lagCommit = family('journal_commit_in_flight', 'gauge', '1 while a journal commit has not answered.');
  const received = family('stage_tasks_received_total', 'counter', 'Tasks that entered a stage.');
  const runsOk = family('stage_runs_completed_total', 'counter', 'Handler runs that succeeded.');
  const runsFailed = family('stage_runs_failed_total', 'counter', 'Handler runs that threw, rejected or timed out.');
  const retried = family('stage_retries_total', 'counter', 'Retries scheduled.');
  const restarts = family('stage_restarts_total', 'counter', "Restarts of a stage's worker.");
  const waiting = family('stage_tasks_waiting', 'gauge', 'Tasks waiting at a stage: inbox, retries in backoff, parked by key.');
  const queued = family('stage_inbox_depth', 'gauge', "Tasks in a stage's inbox proper.");
  const capacity = family('stage_inbox_capacity', 'gauge', "A stage's inbox bound.");
  const inFlight = family('stage_runs_in_flight', 'gauge', 'Handler runs in progress.');
  const breaker = family('stage_breaker_state', 'gauge', "A stage's breaker: 0 closed, 1 open, 2 probing (one probe runs).");
  const status = family('stage_status', 'gauge', '0 starting, 1 running, 2 suspended, 3 terminated.');
  for (const p of snapshot.pipelines) {
    const pl = { pipeline: p.name };
    accepted.push({ labels: pl, value: p.accepted });
    completed.push({ labels: pl, value: p.completed });
    for (const r of p.deadLetterReasons) dead.push({ labels: { ...pl, stage: r.stage, code: r.code }, value: r.count });
    pending.push({ labels: pl, value: p.pending });
    if (p.journal !== undefined) {
      lagOps.push({ labels: pl, value: p.journal.queuedOps });
      lagCommit.push({ labels: pl, value: p.journal.committing ? 1 : 0 });
    }
    for (const s of p.stages) {
      const sl = { pipeline: p.name, stage: s.name };
      received.push({ labels: sl, value: s.received });
      runsOk.push({ labels: sl, value: s.completed });
      runsFailed.push({ labels: sl, value: s.failed });
      retried.push({ labels: sl, value: s.retried });
      restarts.push({ labels: sl, value: s.restarts });
      waiting.push({ labels: sl, value: s.inbox });
      queued.push({ labels: sl, value: s.queued });
      capacity.push({ labels: sl, value: s.capacity });
      inFlight.push({ labels: sl, value: s.inFlight });
      breaker.push({ labels: sl, value: BREAKER[s.breaker] ?? 0 });
      status.push({ labels: sl, value: STAGE_STATUS[s.status] ?? 0 });
    }
  }
  const histogram = (name: string, help: string, of: ReadonlyMap<string, Readonly<StageHistogram>> | undefined): void => {
    const samples = family(name, 'histogram', help);
    const metric = `baton_${name}`;
    for (const [path, h] of of ?? []) {
      const slash = path.indexOf('/');
      const sl = { pipeline: path.slice(0, slash), stage: path.slice(slash + 1) };
      let cumulative = 0;
      RUN_BUCKETS.forEach((le, i) => {
        cumulative += h.counts[i]!;
        samples.push({ metricName: `${metric}_bucket`, labels: { ...sl, le: String(le) }, value: cumulative });
      });
      samples.push({ metricName: `${metric}_bucket`, labels: { ...sl, le: '+Inf' }, value: h.count });
      samples.push({ metricName: `${metric}_sum`, labels: sl, value: h.sum });
      samples.push({ metricName: `${metric}_count`, labels: sl, value: h.count });
    }
  };
  histogram('stage_run_seconds', 'How long handler runs took, from start to return or settle (createSystem({ timings: true })).', times?.run);
  histogram('stage_queued_seconds', "How long tasks waited in a stage's inbox before their first run there (createSystem({ timings: true })).", times?.queued);
  return families;
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Label values escape backslash, double quote and newline (the exposition format's rule). */
function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
