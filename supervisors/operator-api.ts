import { BatonError, type ErrorInfo } from '../src/errors.js';
import type { PipelineJournal, StoredTask, SyncPipelineJournal } from '../src/journal/journal.js';
import { encode } from '../src/codec.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { envelopeOf, type DurableLog } from './durable-log.js';
import type { Envelope } from '../actors/envelope.js';
import type { Outcome } from '../actors/outcomes.js';
import { outcomeOf } from './stored-outcome.js';
import { branchIdsOf, branchOf } from './join-record.js';

// A pipeline's journal, for operators (the CLI, tools): dead letters, recorded outcomes, replay.
// Pipeline.deadLetters/outcome/replay are thin methods over these.

/** The pipeline's journal, or ERR_INVALID_OPTION naming `what` when the system has none. */
export function needJournal(durable: DurableLog | undefined, pipeline: string, what: string): PipelineJournal {
  if (durable === undefined) {
    throw new BatonError('ERR_INVALID_OPTION', `pipeline '${pipeline}'.${what}() reads the journal, and this system has none; create it with createSystem({ journal: sqliteJournal(path) }) or memoryJournal().`, { pipeline });
  }
  return durable.journal;
}

/** Recorded dead letters, oldest first. */
export function readDeadLetters<O>(journal: PipelineJournal, options: { readonly limit?: number; readonly offset?: number }): Outcome<O>[] {
  return journal.deadLetters(options.limit ?? 100, options.offset ?? 0).map((r) => outcomeOf<O>(r));
}

/** The recorded outcome of a task, or undefined while it is pending or unknown. */
export function readOutcome<O>(journal: PipelineJournal, id: string): Outcome<O> | undefined {
  const r = journal.outcome(id);
  return r === undefined ? undefined : outcomeOf<O>(r);
}

/**
 * Sends dead letters back to the stage where they failed, with their attempts reset (after a fix
 * is deployed). Ids that are not dead letters here are skipped. `adopt` takes each replayed task
 * in (counts it pending, hands it to its stage). Returns how many were replayed.
 */
export function replayDeadLetters(
  durable: DurableLog,
  ids: readonly string[],
  hasStage: (name: string) => boolean,
  adopt: (stage: string, env: Envelope, row: StoredTask) => void,
): number {
  const journal = durable.journal;
  let n = 0;
  for (const id of ids) {
    const rec = journal.outcome(id);
    if (rec?.status !== 'dead' || !hasStage(rec.stage)) continue;
    journal.commit([{ op: 'replay', id }]);
    const row = journal.task(id);
    if (row === undefined) continue;
    const env = envelopeOf(row);
    durable.live.add(id);
    adopt(rec.stage, env, row);
    n++;
  }
  return n;
}

/**
 * Cancels task `id` wherever the pipeline holds it, under each of `ids` (itself, or the branches of a
 * fanned-out task): every stage is asked, then, if no stage held one, the journal's backlog (a task
 * recovered but not yet paged in). Each copy found is dead-lettered with ERR_CANCELLED. Returns how
 * many were found.
 */
export function cancelTask(
  id: string,
  ids: readonly string[],
  reason: string,
  stages: readonly AgentSupervisor[],
  durable: DurableLog | undefined,
  deadLetter: (env: Envelope, stage: string, code: string, error: ErrorInfo, attempts: number) => void,
): number {
  const error: ErrorInfo = { name: 'BatonError', code: 'ERR_CANCELLED', message: `task ${id} was cancelled: ${reason}` };
  let n = 0;
  for (const one of ids) {
    let found = 0;
    for (const stage of stages) while (stage.cancel(one, error)) found++;
    n += found;
    if (found > 0 || durable === undefined || durable.live.has(one)) continue;
    const row = durable.journal.status(one) === 'pending' ? durable.journal.task(one) : undefined;
    if (row === undefined) continue;
    const env = envelopeOf(row);
    if (!durable.adoptRow(env)) continue;
    // Paging skips live ids: this one will not be paged in after it is dead-lettered here.
    durable.live.add(one);
    deadLetter(env, row.stage, 'ERR_CANCELLED', error, row.attempts);
    n++;
  }
  return n;
}

/**
 * For tools working on a journal no system has open (the CLI's `baton cancel`): records pending task
 * `id` as cancelled, a dead letter with ERR_CANCELLED and `reason` added to its history. Returns
 * false (and writes nothing) if the task is not pending. The pipeline's next start does not run it.
 */
export function cancelStoredTask(journal: SyncPipelineJournal, id: string, reason: string, at: number): boolean {
  const branch = branchOf(id);
  if (branch !== undefined) {
    throw new BatonError('ERR_INVALID_OPTION', `task ${id} is a branch of a fanned-out task; cancel the task itself (${branch.parent}), which cancels its branches.`, { taskId: id });
  }
  const row = journal.status(id) === 'pending' ? journal.task(id) : undefined;
  if (row === undefined) return false;
  const env = envelopeOf(row);
  const error: ErrorInfo = { name: 'BatonError', code: 'ERR_CANCELLED', message: `task ${id} was cancelled: ${reason}` };
  const errors = [...(env.errors ?? []), { stage: row.stage, attempt: row.attempts, at, charged: false, error }];
  // A fanned-out task's branches go with it (a drop of one that already ended changes nothing).
  const drops = branchIdsOf(row).map((b) => ({ op: 'drop' as const, id: b }));
  journal.commit([...drops, { op: 'dead', id, stage: row.stage, attempts: row.attempts, code: 'ERR_CANCELLED', errors: encode(errors, `the history of task ${id}`), at }]);
  return true;
}
