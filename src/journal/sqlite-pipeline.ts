import type Database from 'better-sqlite3';
import type { JournalOp, StoredOutcome, StoredTask, SyncPipelineJournal, TaskStatus } from './journal.js';

// One pipeline's part of a SQLite journal: its rows in baton_tasks, its runs in progress in
// baton_running, the order its stages were first reached in baton_stages. sqlite.ts opens the file
// (checks, lock, migration) and hands each pipeline one of these.

const STATUS = { pending: 0, completed: 1, dead: 2 } as const;
const STATUS_NAME: TaskStatus[] = ['pending', 'completed', 'dead'];

/** Runs in progress at one stage, as stored: JSON, so an id may hold any character. */
export function encodeRunning(ids: readonly string[], isolated: boolean): string {
  return JSON.stringify({ isolated, ids });
}

export function decodeRunning(text: string, version: number): { ids: Set<string>; isolated: boolean } {
  if (version === 1) {
    // Version 1 joined the ids with newlines, behind a '!' line for an isolated run; read as it wrote them.
    const ids = text === '' ? [] : text.split('\n');
    const isolated = ids[0] === '!';
    return { ids: new Set(isolated ? ids.slice(1) : ids), isolated };
  }
  const v = JSON.parse(text) as { isolated: boolean; ids: string[] };
  return { ids: new Set(v.ids), isolated: v.isolated === true };
}


interface Row {
  id: string;
  seq: number;
  key: string | null;
  stage: string;
  status: number;
  attempts: number;
  payload: Uint8Array | null;
  errors: Uint8Array | null;
  code: string | null;
  finished_at: number | null;
}

export class SqlitePipelineJournal implements SyncPipelineJournal {
  private readonly s;
  private readonly apply: (ops: readonly JournalOp[]) => string[];
  /** Stages already in baton_stages: the order the pipeline's stages were first reached. */
  private readonly known = new Set<string>();

  constructor(
    private readonly db: Database.Database,
    readonly name: string,
    private readonly recovery: { begin(name: string): void; end(name: string): void },
    private readonly version: number,
  ) {
    const p = (sql: string) => db.prepare(sql);
    const ordered = version >= 2;
    this.s = {
      accept: p('INSERT OR IGNORE INTO baton_tasks (pipeline, id, seq, key, stage, status, payload) VALUES (?, ?, ?, ?, ?, 0, ?)'),
      start: p('INSERT OR REPLACE INTO baton_running (pipeline, stage, ids) VALUES (?, ?, ?)'),
      move: p('UPDATE baton_tasks SET stage = ?, payload = ?, attempts = 0 WHERE pipeline = ? AND id = ? AND status = 0'),
      fail: p('UPDATE baton_tasks SET attempts = ?, errors = ? WHERE pipeline = ? AND id = ? AND status = 0'),
      complete: p('UPDATE baton_tasks SET status = 1, stage = ?, attempts = ?, payload = ?, finished_at = ? WHERE pipeline = ? AND id = ? AND status = 0'),
      dead: p('UPDATE baton_tasks SET status = 2, stage = ?, attempts = ?, code = ?, errors = ?, finished_at = ? WHERE pipeline = ? AND id = ? AND status = 0'),
      drop: p('DELETE FROM baton_tasks WHERE pipeline = ? AND id = ? AND status = 0'),
      replay: p('UPDATE baton_tasks SET status = 0, attempts = 0, code = NULL, finished_at = NULL WHERE pipeline = ? AND id = ? AND status = 2'),
      runningAll: p('SELECT stage, ids FROM baton_running WHERE pipeline = ?'),
      status: p('SELECT status FROM baton_tasks WHERE pipeline = ? AND id = ?').pluck(),
      task: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND id = ? AND status = 0'),
      lastSeq: p('SELECT max(seq) FROM baton_tasks WHERE pipeline = ?').pluck(),
      pendingAt: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND status = 0 AND stage = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
      // Stages in the order the pipeline first reached them (its order, for a pipeline without
      // routing), then any the journal has no order for (a version-1 file), by name.
      stages: ordered
        ? p(`SELECT t.stage AS stage, count(*) AS count, max(t.seq) AS maxSeq FROM baton_tasks t
             LEFT JOIN baton_stages o ON o.pipeline = t.pipeline AND o.stage = t.stage
             WHERE t.pipeline = ? AND t.status = 0 GROUP BY t.stage ORDER BY o.ord IS NULL, o.ord, t.stage`)
        : p('SELECT stage, count(*) AS count, max(seq) AS maxSeq FROM baton_tasks WHERE pipeline = ? AND status = 0 GROUP BY stage ORDER BY stage'),
      stageSeen: ordered ? p('INSERT OR IGNORE INTO baton_stages (pipeline, stage, ord) SELECT ?, ?, coalesce(max(ord) + 1, 0) FROM baton_stages WHERE pipeline = ?') : undefined,
      release: p('DELETE FROM baton_running WHERE pipeline = ?'),
      outcome: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND id = ? AND status > 0'),
      dead_list: p('SELECT * FROM baton_tasks WHERE pipeline = ? AND status = 2 ORDER BY finished_at, seq LIMIT ? OFFSET ?'),
      prune: p('DELETE FROM baton_tasks WHERE pipeline = ? AND status = 1 AND finished_at < ?'),
      counts: p('SELECT status, count(*) AS n FROM baton_tasks WHERE pipeline = ? GROUP BY status'),
      // State values live in baton_meta (every schema has it) under a key that cannot clash with its own.
      stateSet: p('INSERT OR REPLACE INTO baton_meta (key, value) VALUES (?, ?)'),
      stateDel: p('DELETE FROM baton_meta WHERE key = ?'),
      stateGet: p('SELECT value FROM baton_meta WHERE key = ?').pluck(),
    };
    const s = this.s;
    const name_ = name;
    const known = this.known;
    if (ordered) for (const st of db.prepare('SELECT stage FROM baton_stages WHERE pipeline = ?').pluck().all(name) as string[]) known.add(st);
    this.apply = db.transaction((ops: readonly JournalOp[]) => {
      let seen: string[] | undefined;
      for (const o of ops) {
        // A set lookup per op; the insert happens once per stage in the life of the journal.
        if (s.stageSeen !== undefined && 'stage' in o && o.op !== 'start' && !known.has(o.stage) && !(seen ??= []).includes(o.stage)) {
          s.stageSeen.run(name_, o.stage, name_);
          seen.push(o.stage);
        }
        switch (o.op) {
          case 'accept':
            s.accept.run(name_, o.id, o.seq, o.key ?? null, o.stage, o.payload);
            break;
          case 'start':
            s.start.run(name_, o.stage, encodeRunning(o.ids, o.isolated === true));
            break;
          case 'move':
            s.move.run(o.stage, o.payload, name_, o.id);
            break;
          case 'fail':
            s.fail.run(o.attempts, o.errors, name_, o.id);
            break;
          case 'complete':
            s.complete.run(o.stage, o.attempts, o.output, o.at, name_, o.id);
            break;
          case 'dead':
            s.dead.run(o.stage, o.attempts, o.code, o.errors, o.at, name_, o.id);
            break;
          case 'replay':
            s.replay.run(name_, o.id);
            break;
          case 'drop':
            s.drop.run(name_, o.id);
            break;
          case 'state':
            if (o.value === null) s.stateDel.run(stateKey(name_, o.key));
            else s.stateSet.run(stateKey(name_, o.key), o.value);
            break;
        }
      }
      return seen ?? [];
    });
  }

  state(key: string): string | undefined {
    return (this.s.stateGet.get(stateKey(this.name, key)) as string | undefined) ?? undefined;
  }

  lastSeq(): number {
    return (this.s.lastSeq.get(this.name) as number | null) ?? 0;
  }

  status(id: string): TaskStatus | undefined {
    const st = this.s.status.get(this.name, id) as number | undefined;
    return st === undefined ? undefined : STATUS_NAME[st];
  }

  task(id: string): StoredTask | undefined {
    const r = this.s.task.get(this.name, id) as Row | undefined;
    return r === undefined ? undefined : toTask(r);
  }

  pendingAt(stage: string, afterSeq: number, upToSeq: number, limit: number): StoredTask[] {
    this.recovery.begin(this.name);
    return (this.s.pendingAt.all(this.name, stage, afterSeq, upToSeq, limit) as Row[]).map(toTask);
  }

  runningAtCrash(): Map<string, { ids: Set<string>; isolated: boolean }> {
    const rows = this.s.runningAll.all(this.name) as { stage: string; ids: string }[];
    return new Map(rows.map((r) => [r.stage, decodeRunning(r.ids, this.version)]));
  }

  pendingStages(): Map<string, { count: number; maxSeq: number }> {
    const rows = this.s.stages.all(this.name) as { stage: string; count: number; maxSeq: number }[];
    return new Map(rows.map((r) => [r.stage, { count: r.count, maxSeq: r.maxSeq }]));
  }

  commit(ops: readonly JournalOp[]): void {
    if (ops.length === 0) return;
    // Known only once committed: a transaction that failed wrote no stage order either.
    for (const st of this.apply(ops)) this.known.add(st);
  }

  recovered(): void {
    this.recovery.end(this.name);
  }

  releaseRunning(): void {
    this.s.release.run(this.name);
  }

  outcome(id: string): StoredOutcome | undefined {
    const r = this.s.outcome.get(this.name, id) as Row | undefined;
    return r === undefined ? undefined : toOutcome(r);
  }

  deadLetters(limit: number, offset: number): StoredOutcome[] {
    return (this.s.dead_list.all(this.name, limit, offset) as Row[]).map(toOutcome);
  }

  pruneCompleted(before: number): number {
    return this.s.prune.run(this.name, before).changes;
  }

  counts(): { pending: number; completed: number; dead: number } {
    const out = { pending: 0, completed: 0, dead: 0 };
    for (const r of this.s.counts.all(this.name) as { status: number; n: number }[]) out[STATUS_NAME[r.status]!] = r.n;
    return out;
  }
}

function toTask(r: Row): StoredTask {
  return { id: r.id, seq: r.seq, key: r.key ?? undefined, stage: r.stage, payload: r.payload!, attempts: r.attempts, errors: r.errors ?? undefined };
}

function toOutcome(r: Row): StoredOutcome {
  return {
    id: r.id,
    key: r.key ?? undefined,
    status: r.status === STATUS.completed ? 'completed' : 'dead',
    stage: r.stage,
    attempts: r.attempts,
    output: r.status === STATUS.completed ? (r.payload ?? undefined) : undefined,
    errors: r.errors ?? undefined,
    code: r.code ?? undefined,
    finishedAt: r.finished_at ?? 0,
  };
}

/** A state value's key in baton_meta: 'state:' and the JSON of [pipeline, key] (no clash with 'app' or 'schema_version'). */
function stateKey(pipeline: string, key: string): string {
  return `state:${JSON.stringify([pipeline, key])}`;
}
