import type { Logger } from '../src/logging.js';
import { envelopeOf, type DurableLog } from './durable-log.js';
import { isLater, type StoredTask } from '../src/journal/journal.js';
import type { Envelope } from '../actors/envelope.js';
import { FAN_STAGE } from './join-record.js';

/** What recovery needs from its pipeline. */
export interface RecoveryTarget {
  readonly name: string;
  readonly log: Logger;
  hasStage(name: string): boolean;
  /** `count` tasks are pending at one stage: counted before any of them can be dead-lettered. */
  countPending(count: number): void;
  /** A task was pending at a stage the pipeline no longer has: dead-letter it with ERR_UNKNOWN_ADDRESS. */
  stageGone(env: Envelope, stage: string, attempts: number, message: string): void;
  /** Tasks that fanned out wait at FAN_STAGE for their branches (fan-join.ts): their joins are checked. */
  recoverJoins(upTo: number): void;
}

/**
 * Resumes the tasks a previous run of this pipeline left pending: each stage pages its own
 * backlog in from the journal as its inbox has room. Tasks at a stage that no longer exists are
 * dead-lettered with ERR_UNKNOWN_ADDRESS; tasks that fanned out have their joins checked. Returns how
 * many rows were pending (a fan-out branch's row counts until it pages in: see FanJoins.adoptRecovered).
 */
export function recoverPending(durable: DurableLog, target: RecoveryTarget): number {
  const journal = durable.journal;
  let recovered = 0;
  durable.noteCrashedRuns();
  for (const [name, { count, maxSeq }] of journal.pendingStages()) {
    target.countPending(count);
    recovered += count;
    if (name === FAN_STAGE) target.recoverJoins(maxSeq);
    else if (target.hasStage(name)) durable.addBacklog(name, maxSeq);
    else deadLetterGone(durable, target, name, maxSeq, 0);
  }
  if (!durable.hasAnyBacklog()) journal.recovered();
  if (recovered > 0) target.log.info({ recovered }, 'recovered pending tasks from the journal');
  return recovered;
}

/**
 * Dead-letters, a page of 1,000 at a time, the tasks pending at a stage the pipeline no longer has
 * (they were counted as pending first, so `drain` waits for their outcomes).
 */
function deadLetterGone(durable: DurableLog, target: RecoveryTarget, stage: string, upTo: number, after: number): void {
  const rows = durable.journal.pendingAt(stage, after, upTo, 1000);
  const take = (page: StoredTask[]): void => {
    if (page.length === 0) return;
    for (const row of page) {
      const env = envelopeOf(row);
      if (!durable.adoptRow(env)) continue;
      durable.live.add(row.id);
      const message = `task ${row.id} was pending at stage '${stage}', which pipeline '${target.name}' no longer has; add the stage back and replay it.`;
      target.stageGone(env, stage, row.attempts, message);
    }
    deadLetterGone(durable, target, stage, upTo, page[page.length - 1]!.seq);
  };
  if (isLater(rows)) rows.then(take, (err: unknown) => target.log.error({ err, stage }, 'reading tasks at a stage that is gone failed'));
  else take(rows);
}
