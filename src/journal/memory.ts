import type { Journal, JournalOp, StoredOutcome, StoredTask, SyncPipelineJournal, TaskStatus } from './journal.js';

/** One task as the memory journal holds it (and as a remote backend stores it per task). */
export interface TaskRecord {
  id: string;
  seq: number;
  key: string | undefined;
  stage: string;
  status: TaskStatus;
  attempts: number;
  payload: Uint8Array | undefined;
  errors: Uint8Array | undefined;
  code: string | undefined;
  finishedAt: number;
}

/**
 * The journal's semantics without a file: for tests, and for a program that wants duplicate-id
 * detection and dead-letter replay across pipeline restarts within one process. Loses everything
 * with the process.
 */
export function memoryJournal(options: { readonly now?: () => number } = {}): Journal<SyncPipelineJournal> {
  const parts = new Map<string, MemoryPipelineJournal>();
  return {
    kind: 'memory',
    durable: false,
    now: options.now ?? Date.now,
    openPipeline(name) {
      let pj = parts.get(name);
      if (pj === undefined) parts.set(name, (pj = new MemoryPipelineJournal(name)));
      return pj;
    },
    pipelines: () => [...parts.keys()].filter((n) => parts.get(n)!.size() > 0).sort(),
    close: () => undefined,
  };
}

/**
 * One pipeline's tasks in memory. Also the in-process state of a remote backend (src/journal/nats.ts),
 * which answers its reads from here and stores what a commit touched: hence `touched`, `record`,
 * `restore` and the running-set accessors.
 */
export class MemoryPipelineJournal implements SyncPipelineJournal {
  private readonly recs = new Map<string, TaskRecord>();
  private maxSeq = 0;
  private readonly running = new Map<string, { ids: readonly string[]; isolated: boolean }>();

  constructor(readonly name: string) {}

  size(): number {
    return this.recs.size;
  }

  /** The task record of `id` (live: do not change it), or undefined. */
  record(id: string): Readonly<TaskRecord> | undefined {
    return this.recs.get(id);
  }

  /** The runs in progress recorded for `stage`, or undefined. */
  runningAt(stage: string): { readonly ids: readonly string[]; readonly isolated: boolean } | undefined {
    return this.running.get(stage);
  }

  /** Stages with a recorded set of runs in progress. */
  runningStages(): string[] {
    return [...this.running.keys()];
  }

  /** Puts back a stored task record (loading a remote backend). */
  restore(rec: TaskRecord): void {
    this.recs.set(rec.id, { ...rec });
    this.maxSeq = Math.max(this.maxSeq, rec.seq);
  }

  /** Puts back a stored set of runs in progress (loading a remote backend). */
  restoreRunning(stage: string, ids: readonly string[], isolated: boolean): void {
    if (ids.length > 0) this.running.set(stage, { ids: [...ids], isolated });
  }

  /** What `ops` touch: the task ids and the stages whose running sets they write, in first-touch order. */
  static touched(ops: readonly JournalOp[]): { ids: string[]; stages: string[]; states: string[] } {
    const ids = new Set<string>();
    const stages = new Set<string>();
    const states = new Set<string>();
    for (const o of ops) {
      if (o.op === 'start') stages.add(o.stage);
      else if (o.op === 'state') states.add(o.key);
      else ids.add(o.id);
    }
    return { ids: [...ids], stages: [...stages], states: [...states] };
  }

  /** Values kept by `state` ops. */
  private readonly states = new Map<string, string>();

  state(key: string): string | undefined {
    return this.states.get(key);
  }

  /** Loads a stored state value (a backend reading its storage). */
  restoreState(key: string, value: string | undefined): void {
    if (value === undefined) this.states.delete(key);
    else this.states.set(key, value);
  }

  /** Ids of completed tasks that finished before `before`: what pruneCompleted(before) removes. */
  completedBefore(before: number): string[] {
    const out: string[] = [];
    for (const r of this.recs.values()) if (r.status === 'completed' && r.finishedAt < before) out.push(r.id);
    return out;
  }

  lastSeq(): number {
    return this.maxSeq;
  }

  status(id: string): TaskStatus | undefined {
    return this.recs.get(id)?.status;
  }

  task(id: string): StoredTask | undefined {
    const r = this.recs.get(id);
    return r?.status === 'pending' ? { id: r.id, seq: r.seq, key: r.key, stage: r.stage, payload: r.payload!, attempts: r.attempts, errors: r.errors } : undefined;
  }

  pendingAt(stage: string, afterSeq: number, upToSeq: number, limit: number): StoredTask[] {
    const out = [...this.recs.values()]
      .filter((r) => r.status === 'pending' && r.stage === stage && r.seq > afterSeq && r.seq <= upToSeq)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, limit);
    return out.map((r) => ({ id: r.id, seq: r.seq, key: r.key, stage: r.stage, payload: r.payload!, attempts: r.attempts, errors: r.errors }));
  }

  runningAtCrash(): Map<string, { ids: Set<string>; isolated: boolean }> {
    return new Map([...this.running].map(([stage, r]) => [stage, { ids: new Set(r.ids), isolated: r.isolated }]));
  }

  pendingStages(): Map<string, { count: number; maxSeq: number }> {
    const m = new Map<string, { count: number; maxSeq: number }>();
    for (const r of this.recs.values()) {
      if (r.status !== 'pending') continue;
      const e = m.get(r.stage) ?? { count: 0, maxSeq: 0 };
      e.count++;
      e.maxSeq = Math.max(e.maxSeq, r.seq);
      m.set(r.stage, e);
    }
    return m;
  }

  commit(ops: readonly JournalOp[]): void {
    for (const o of ops) {
      if (o.op === 'accept') {
        if (this.recs.has(o.id)) continue;
        this.maxSeq = Math.max(this.maxSeq, o.seq);
        this.recs.set(o.id, { id: o.id, seq: o.seq, key: o.key, stage: o.stage, status: 'pending', attempts: 0, payload: o.payload, errors: undefined, code: undefined, finishedAt: 0 });
        continue;
      }
      if (o.op === 'start') {
        this.running.set(o.stage, { ids: [...o.ids], isolated: o.isolated === true });
        continue;
      }
      if (o.op === 'state') {
        this.restoreState(o.key, o.value ?? undefined);
        continue;
      }
      const r = this.recs.get(o.id);
      if (r === undefined) continue;
      if (o.op === 'replay') {
        if (r.status === 'dead') Object.assign(r, { status: 'pending', attempts: 0, code: undefined, finishedAt: 0 });
        continue;
      }
      if (r.status !== 'pending') continue;
      if (o.op === 'drop') this.recs.delete(o.id);
      else if (o.op === 'move') Object.assign(r, { stage: o.stage, payload: o.payload, attempts: 0 });
      else if (o.op === 'fail') Object.assign(r, { attempts: o.attempts, errors: o.errors });
      else if (o.op === 'complete') Object.assign(r, { status: 'completed', stage: o.stage, attempts: o.attempts, payload: o.output, finishedAt: o.at });
      else Object.assign(r, { status: 'dead', stage: o.stage, attempts: o.attempts, code: o.code, errors: o.errors, finishedAt: o.at });
    }
  }

  recovered(): void {}

  releaseRunning(): void {
    this.running.clear();
  }

  outcome(id: string): StoredOutcome | undefined {
    const r = this.recs.get(id);
    return r === undefined || r.status === 'pending' ? undefined : toOutcome(r);
  }

  deadLetters(limit: number, offset: number): StoredOutcome[] {
    return [...this.recs.values()]
      .filter((r) => r.status === 'dead')
      .sort((a, b) => a.finishedAt - b.finishedAt || a.seq - b.seq)
      .slice(offset, offset + limit)
      .map(toOutcome);
  }

  pruneCompleted(before: number): number {
    let n = 0;
    for (const [id, r] of this.recs) {
      if (r.status === 'completed' && r.finishedAt < before) {
        this.recs.delete(id);
        n++;
      }
    }
    return n;
  }

  counts(): { pending: number; completed: number; dead: number } {
    const out = { pending: 0, completed: 0, dead: 0 };
    for (const r of this.recs.values()) out[r.status]++;
    return out;
  }
}

function toOutcome(r: TaskRecord): StoredOutcome {
  return { id: r.id, key: r.key, status: r.status === 'completed' ? 'completed' : 'dead', stage: r.stage, attempts: r.attempts, output: r.status === 'completed' ? r.payload : undefined, errors: r.errors, code: r.code, finishedAt: r.finishedAt };
}
