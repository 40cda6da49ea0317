import type { BatonEvent } from '../system/index.js';
import type { HandlerCall } from './faults.js';
import type { Recording } from './scenario.js';

/**
 * The promises Baton makes, checked against a recording. Each check returns violations that say
 * which task, which stage and what happened, so a shrunk counterexample reads as a story.
 */
export type InvariantName = 'conservation' | 'progress' | 'noUpstreamReplay' | 'isolation' | 'keyOrder' | 'inboxBounds' | 'poisonVsOutage';

/** Every invariant the testkit checks, in the order it checks them. */
export const INVARIANTS: readonly InvariantName[] = ['conservation', 'progress', 'noUpstreamReplay', 'isolation', 'keyOrder', 'inboxBounds', 'poisonVsOutage'];

/** One broken invariant, with a readable message naming the task and stage. */
export interface Violation {
  readonly invariant: InvariantName;
  readonly message: string;
  readonly taskId?: string;
  readonly stage?: string;
}

/** What `check` found: whether every invariant held, which were checked, and each violation. */
export interface InvariantReport {
  readonly ok: boolean;
  readonly checked: readonly InvariantName[];
  readonly violations: readonly Violation[];
  /** A few lines: the scenario, then each violation (at most `limit`). */
  summary(limit?: number): string;
}

/** Which invariants `check` and `assertAll` test. */
export interface CheckOptions {
  /** Optional; defaults to every invariant. */
  readonly only?: readonly InvariantName[];
  /** Optional; defaults to none. */
  readonly skip?: readonly InvariantName[];
}

/** The error `assertAll` throws: its message is the report's summary. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(readonly report: InvariantReport) {
    super(report.summary());
  }
}

const CHECKS: Record<InvariantName, (rec: Recording) => Violation[]> = {
  conservation,
  progress,
  noUpstreamReplay,
  isolation,
  keyOrder,
  inboxBounds,
  poisonVsOutage,
};

/** Checks a scenario's Recording against the invariants (all of them, or `options.only` / `skip`) and reports every violation; never throws. */
export function check(rec: Recording, options: CheckOptions = {}): InvariantReport {
  const checked = (options.only ?? INVARIANTS).filter((n) => !(options.skip ?? []).includes(n));
  const violations = checked.flatMap((name) => CHECKS[name](rec));
  return {
    ok: violations.length === 0,
    checked,
    violations,
    summary: (limit = 10) => summarise(rec, checked, violations, limit),
  };
}

/** Like `check`, but throws an InvariantViolation whose message lists the scenario, the plan and each violation when any invariant fails. */
export function assertAll(rec: Recording, options: CheckOptions = {}): void {
  const report = check(rec, options);
  if (!report.ok) throw new InvariantViolation(report);
}

// ---- the invariants -----------------------------------------------------------------------------

/** Every accepted task has exactly one outcome; no outcome for a task that was never accepted. */
function conservation(rec: Recording): Violation[] {
  const out: Violation[] = [];
  const byId = new Map<string, string[]>();
  for (const o of rec.outcomes) {
    const list = byId.get(o.id) ?? [];
    list.push(`${o.status} at ${o.stage}`);
    byId.set(o.id, list);
  }
  const accepted = new Set(rec.accepted);
  for (const [id, list] of byId) {
    if (!accepted.has(id)) out.push({ invariant: 'conservation', taskId: id, message: `task ${id} was never accepted but has an outcome (${list.join(', ')})` });
    else if (list.length > 1) out.push({ invariant: 'conservation', taskId: id, message: `task ${id} has ${list.length} outcomes: ${list.join('; ')}` });
  }
  if (rec.drained) {
    for (const id of rec.accepted) {
      if (!byId.has(id)) out.push({ invariant: 'conservation', taskId: id, message: `task ${id} was accepted (${rec.sendResults.get(id)}) but has no outcome, and the pipeline says nothing is pending` });
    }
  }
  return out;
}

/** The scenario ended: nothing pending when the time limit came (or the pipeline failed, which is reported). */
function progress(rec: Recording): Violation[] {
  if (rec.failure !== undefined) return [{ invariant: 'progress', message: `the pipeline failed: ${rec.failure.message}` }];
  if (rec.drained) return [];
  const done = new Set(rec.outcomes.map((o) => o.id));
  const left = rec.accepted.filter((id) => !done.has(id));
  return [{ invariant: 'progress', message: `${left.length} accepted task(s) had no outcome after ${rec.endedAt} ms of simulated time: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ', ...' : ''}` }];
}

/**
 * A stage's handler runs a task again only when that stage failed it: successful runs at a stage
 * never outnumber the task's arrivals there (plus, per kill, one per arrival, since a kill may lose
 * a handoff not yet committed). In a linear pipeline a task's runs also never move backwards through the stages.
 */
function noUpstreamReplay(rec: Recording): Violation[] {
  const out: Violation[] = [];
  const index = new Map(rec.stages.map((s, i) => [s, i]));
  for (const [id, calls] of callsByTask(rec.calls)) {
    const arrivals = new Map<string, number>([[rec.stages[0]!, 1]]);
    const ok = new Map<string, number>();
    let furthest = -1;
    for (const c of calls) {
      const at = index.get(c.stage)!;
      if (rec.linear && at < furthest) {
        out.push({ invariant: 'noUpstreamReplay', taskId: id, stage: c.stage, message: `task ${id} ran at '${c.stage}' (attempt ${c.attempt ?? '?'}) after it had reached '${rec.stages[furthest]}'` });
      }
      furthest = Math.max(furthest, at);
      if (c.result !== 'ok') continue;
      ok.set(c.stage, (ok.get(c.stage) ?? 0) + 1);
      const next = c.routed === undefined ? (at + 1 < rec.stages.length ? [rec.stages[at + 1]!] : []) : (c.routed ?? []);
      for (const s of next) arrivals.set(s, (arrivals.get(s) ?? 0) + 1);
    }
    for (const [stage, n] of ok) {
      // A kill may redo each run of the task here whose end was not committed: one per arrival (two
      // branches of a fanned-out task can meet at one stage, each a task of its own in the journal).
      const arrived = arrivals.get(stage) ?? 0;
      const allowed = arrived + rec.kills * Math.max(1, arrived);
      if (n > allowed) out.push({ invariant: 'noUpstreamReplay', taskId: id, stage, message: `task ${id} succeeded ${n} times at '${stage}' but arrived there ${arrivals.get(stage) ?? 0} time(s)${rec.kills ? ` (and ${rec.kills} kill(s) allow as many redos)` : ''}` });
    }
  }
  return out;
}

/**
 * Stages the plan does not touch are not hurt by faults elsewhere: they crash only with errors their
 * own handler threw (a malformed input, say), never with a timeout or another Baton error, an
 * injected fault, or an escalation. (Generated pipelines' handlers never throw, so there a clean
 * stage does not crash at all.)
 */
function isolation(rec: Recording): Violation[] {
  const out: Violation[] = [];
  const faulted = new Set(Object.entries(rec.plan.stages).filter(([, f]) => f.length > 0).map(([s]) => s));
  for (const e of rec.events) {
    const stage = e.path.slice(e.path.indexOf('/') + 1);
    if (!rec.stages.includes(stage) || faulted.has(stage)) continue;
    const code = e.type === 'crashed' ? e.error.code : undefined;
    // Baton's own failures (a timeout, an abort) are BatonErrors; a Node error's ERR_* code is the
    // handler's own (new URL('nope') throws ERR_INVALID_URL) and allowed like any other.
    const batons = e.type === 'crashed' && e.error.name === 'BatonError';
    if (code !== undefined && code !== 'ERR_PROCESS_DIED' && (batons || code.startsWith('INJECTED_'))) {
      out.push({ invariant: 'isolation', stage, ...(e.type === 'crashed' && e.taskId ? { taskId: e.taskId } : {}), message: `stage '${stage}' has no injected fault but crashed at ${e.at} ms with ${code}: ${e.type === 'crashed' ? e.error.message : ''}` });
    } else if (e.type === 'escalated') {
      out.push({ invariant: 'isolation', stage, message: `stage '${stage}' has no injected fault but escalated at ${e.at} ms: ${e.reason}` });
    }
  }
  return out;
}

/**
 * At a stage with orderByKey, tasks with the same key run one at a time in the order they arrived:
 * every run of the earlier task ends before the first run of the later one starts. Checked where
 * arrival order is accepted order: linear pipelines whose stages up to this one all order by key.
 */
function keyOrder(rec: Recording): Violation[] {
  const out: Violation[] = [];
  if (!rec.linear) return out;
  const byTask = callsByTask(rec.calls);
  for (const stage of rec.stages) {
    if (!rec.orderByKey.has(stage)) break; // an unordered stage upstream may reorder what arrives here
    const lastOfKey = new Map<string, { id: string; end: number }>();
    for (const id of rec.accepted) {
      const key = rec.keys.get(id);
      if (key === undefined) continue;
      const calls = (byTask.get(id) ?? []).filter((c) => c.stage === stage);
      if (calls.length === 0) continue;
      const prev = lastOfKey.get(key);
      const start = calls[0]!.startSeq;
      if (prev !== undefined && prev.end > start) {
        out.push({ invariant: 'keyOrder', taskId: id, stage, message: `task ${id} (key '${key}') started at '${stage}' before task ${prev.id}, accepted earlier with the same key, had finished there` });
      }
      const ended = calls.map((c) => (c.endSeq === 0 ? (rec.kills > 0 ? c.startSeq : Infinity) : c.endSeq));
      lastOfKey.set(key, { id, end: Math.max(...ended) });
    }
  }
  return out;
}

/** No stage's inbox ever held more tasks than its mailbox capacity. */
function inboxBounds(rec: Recording): Violation[] {
  const out: Violation[] = [];
  for (const [stage, p] of rec.peaks) {
    if (p.peak > p.capacity) out.push({ invariant: 'inboxBounds', stage, message: `stage '${stage}' held ${p.peak} tasks in its inbox; its capacity is ${p.capacity}` });
  }
  return out;
}

/**
 * An outage is the agent's fault, not the tasks': once a stage's breaker has opened during an
 * outage, no task that first failed there after that moment is dead-lettered for the outage alone.
 * (Tasks that failed before it opened may be: a retried task that fails again is evidence against
 * itself, by design. And a trickle of fewer fresh tasks than the breaker's threshold looks like
 * poison: no breaker opens, so nothing is claimed.)
 */
function poisonVsOutage(rec: Recording): Violation[] {
  const out: Violation[] = [];
  // No outage failure is charged to a task while its stage's breaker is open, unless the task had
  // failed there before (a retried probe is evidence against itself).
  const open = new Map<string, boolean>();
  const chargedBefore = new Set<string>();
  for (const [i, e] of rec.events.entries()) {
    if (rec.killedAtEvent.includes(i)) open.clear(); // breaker state does not outlive the process
    const stage = e.path.slice(e.path.indexOf('/') + 1);
    if (e.type === 'breaker-opened') open.set(stage, true);
    else if (e.type === 'breaker-closed') open.set(stage, false);
    else if (e.type === 'crashed' && e.taskId !== undefined && e.charged === true) {
      const key = `${e.taskId}@${stage}`;
      if (open.get(stage) === true && e.error.code === 'INJECTED_OUTAGE' && !chargedBefore.has(key)) {
        out.push({ invariant: 'poisonVsOutage', taskId: e.taskId, stage, message: `task ${e.taskId} was charged an attempt for an outage failure at '${stage}' (${e.at} ms) while the breaker was open, on its first charged failure there` });
      }
      chargedBefore.add(key);
    }
  }
  for (const o of rec.outcomes) {
    if (o.status !== 'dead-lettered') continue;
    const charged = o.errors.filter((e) => e.stage === o.stage && e.charged);
    if (charged.length === 0 || !charged.every((e) => e.error.code === 'INJECTED_OUTAGE')) continue;
    // Event order, not clock time: on simulated time a whole burst happens at one instant.
    const path = `/${o.stage}`;
    const first = rec.events.findIndex((e) => e.type === 'crashed' && e.taskId === o.id && e.path.endsWith(path));
    let open: BatonEvent | undefined;
    for (let i = 0; i < first; i++) {
      if (rec.killedAtEvent.includes(i)) open = undefined; // breaker state does not outlive the process
      const e = rec.events[i]!;
      if (!e.path.endsWith(path)) continue;
      if (e.type === 'breaker-opened' && open === undefined && outageAt(rec, o.stage, e.at)) open = e;
      else if (e.type === 'breaker-closed') open = undefined;
    }
    // Breaker state does not outlive the process (not journaled): after a kill between the first
    // failure and the dead letter, the new process starts with a closed breaker, so nothing is claimed.
    const dead = rec.events.findIndex((e) => e.type === 'dead-lettered' && e.taskId === o.id);
    if (open !== undefined && !rec.killedAtEvent.some((k) => k > first && k <= dead)) {
      out.push({
        invariant: 'poisonVsOutage',
        taskId: o.id,
        stage: o.stage,
        message: `task ${o.id} first failed at '${o.stage}' while its breaker was open for an outage (opened at ${open.at} ms), and was dead-lettered for the outage alone (${charged.length} charged outage failure(s))`,
      });
    }
  }
  return out;
}

function outageAt(rec: Recording, stage: string, at: number): boolean {
  return (rec.plan.stages[stage] ?? []).some((f) => f.kind === 'outage' && at >= f.fromMs && at < f.toMs);
}

// ---- helpers --------------------------------------------------------------------------------------

function callsByTask(calls: readonly HandlerCall[]): Map<string, HandlerCall[]> {
  const by = new Map<string, HandlerCall[]>();
  for (const c of calls) {
    if (c.taskId === undefined) continue;
    const list = by.get(c.taskId);
    if (list === undefined) by.set(c.taskId, [c]);
    else list.push(c);
  }
  return by;
}

function summarise(rec: Recording, checked: readonly InvariantName[], violations: readonly Violation[], limit: number): string {
  const plan = JSON.stringify(rec.plan, (_k, v: unknown) => (typeof v === 'function' ? '<function>' : v));
  const dead = rec.outcomes.filter((o) => o.status === 'dead-lettered').length;
  const head =
    `${violations.length === 0 ? 'all invariants hold' : `${violations.length} violation(s)`} (checked ${checked.join(', ')}) ` +
    `in a scenario of ${rec.accepted.length} accepted task(s) through ${rec.stages.join(' -> ')}${rec.linear ? '' : ' (routed)'}: ` +
    `${rec.outcomes.length - dead} completed, ${dead} dead-lettered, ${rec.calls.length} handler calls, ${rec.kills} kill(s), ended at ${rec.endedAt} ms\n  plan: ${plan}`;
  const lines = violations.slice(0, limit).map((v) => `  ${v.invariant}: ${v.message}`);
  if (violations.length > limit) lines.push(`  ... and ${violations.length - limit} more`);
  return [head, ...lines].join('\n');
}

/** The invariant checks as one object: `invariants.check(rec)`, `invariants.assertAll(rec)`, `invariants.INVARIANTS`. */
export const invariants = {
  /** See `check`. */
  check,
  /** See `assertAll`. */
  assertAll,
  INVARIANTS,
} as const;
