import type { PipelineStats, SystemSnapshot } from '../system/index.js';
import { table } from './table.js';

/**
 * `baton top`: the supervision tree with live counts, for a terminal or a script. From a running
 * system's live page (`--url`, the address system.observe() printed; GET /snapshot, no token needed)
 * it shows every stage's state, inbox, runs in flight, counts and rate; from a journal file (`--db`)
 * what the journal knows: tasks pending per stage, completed, dead letters. Frames every `intervalMs`
 * until SIGINT, or one with `once` (with `json`: the snapshot itself).
 */
export interface TopOptions {
  readonly url?: string | undefined;
  /** Reads the journal file: the rows of `baton status`. */
  readonly readJournal?: (() => JournalRow[] | Promise<JournalRow[]>) | undefined;
  readonly once: boolean;
  readonly json: boolean;
  readonly intervalMs: number;
  /** Clear the screen between frames (stdout is a terminal). */
  readonly tty: boolean;
  /** Resolves when the operator stops it (SIGINT); tests pass their own. */
  readonly stopped: Promise<void>;
}

export interface JournalRow {
  readonly pipeline: string;
  readonly pending: number;
  readonly completed: number;
  readonly dead: number;
  readonly pendingByStage: readonly { readonly stage: string; readonly count: number }[];
}

/** Exit codes as the rest of the CLI: 0 done, 1 the source said no (unreachable, refused). */
export async function top(options: TopOptions, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let previous: { at: number; completed: Map<string, number> } | undefined;
  for (;;) {
    let frame: string;
    if (options.url !== undefined) {
      const snapshot = await fetchSnapshot(options.url).catch((e: Error) => e);
      if (snapshot instanceof Error) {
        err(`baton top: cannot read ${options.url}/snapshot: ${snapshot.message}. Give the address system.observe() printed (http://127.0.0.1:PORT).\n`);
        return 1;
      }
      if (options.once && options.json) {
        out(`${JSON.stringify(snapshot)}\n`);
        return 0;
      }
      const now = Date.now();
      frame = liveFrame(snapshot, previous === undefined ? undefined : { seconds: (now - previous.at) / 1000, completed: previous.completed });
      previous = { at: now, completed: new Map(snapshot.pipelines.flatMap((p) => p.stages.map((s) => [`${p.name}/${s.name}`, s.completed] as const))) };
    } else {
      const rows = await Promise.resolve()
        .then(() => options.readJournal!())
        .catch((e: Error) => e);
      if (rows instanceof Error) {
        err(`baton top: cannot read the journal: ${rows.message}\n`);
        return 1;
      }
      if (options.once && options.json) {
        out(`${JSON.stringify(rows)}\n`);
        return 0;
      }
      frame = journalFrame(rows);
    }
    out(`${options.tty && !options.once ? '\x1b[H\x1b[2J' : ''}${frame}\n`);
    if (options.once) return 0;
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([options.stopped.then(() => 'stop' as const), new Promise<'tick'>((r) => (timer = setTimeout(() => r('tick'), options.intervalMs)))]);
    clearTimeout(timer);
    if (next === 'stop') return 0;
    if (!options.tty) out('\n');
  }
}

async function fetchSnapshot(base: string): Promise<SystemSnapshot> {
  const url = new URL('/snapshot', base);
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return (await res.json()) as SystemSnapshot;
}

/** One frame of a running system: a line per pipeline, a table of its stages. `rate`: completed per second since the last frame. */
export function liveFrame(snapshot: SystemSnapshot, since: { seconds: number; completed: Map<string, number> } | undefined): string {
  if (snapshot.pipelines.length === 0) return 'no pipelines in this system';
  return snapshot.pipelines
    .map((p: PipelineStats) => {
      const head = `pipeline ${p.name}  ${p.status}  accepted ${p.accepted}  pending ${p.pending}  completed ${p.completed}  dead-lettered ${p.deadLettered}`;
      const rows = p.stages.map((s) => {
        const before = since?.completed.get(`${p.name}/${s.name}`);
        const rate = since === undefined || before === undefined || since.seconds <= 0 ? '' : String(Math.round((s.completed - before) / since.seconds));
        return {
          stage: s.name,
          state: s.status === 'running' && s.breaker !== 'closed' ? `breaker ${s.breaker}` : s.throttle !== 'open' ? `throttle ${s.throttle}` : s.status,
          inbox: `${s.queued}/${s.capacity}`,
          waiting: s.inbox,
          running: s.inFlight,
          done: s.completed,
          'per s': rate,
          failed: s.failed,
          retried: s.retried,
          restarts: s.restarts,
          dead: s.deadLettered,
        };
      });
      return `${head}\n${table(rows, ['stage', 'state', 'inbox', 'waiting', 'running', 'done', 'per s', 'failed', 'retried', 'restarts', 'dead'])}`;
    })
    .join('\n\n');
}

/** One frame from a journal file: what is pending where, and what ended. */
export function journalFrame(rows: readonly JournalRow[]): string {
  if (rows.length === 0) return 'the journal holds no tasks';
  return rows
    .map((r) => {
      const head = `pipeline ${r.pipeline}  pending ${r.pending}  completed ${r.completed}  dead-lettered ${r.dead}  (from the journal: live counts need --url)`;
      return r.pendingByStage.length === 0 ? head : `${head}\n${table(r.pendingByStage.map((s) => ({ stage: s.stage, pending: s.count })), ['stage', 'pending'])}`;
    })
    .join('\n\n');
}
