import type { Logger } from '../src/logging.js';
import { envelopeOf, type DurableLog } from './durable-log.js';
import type { Envelope } from '../actors/envelope.js';

/** What recovery needs from its pipeline. */
export interface RecoveryTarget {
  readonly name: string;
  readonly log: Logger;
  hasStage(name: string): boolean;
  /** `count` tasks are pending at one stage: counted before any of them can be dead-lettered. */
  countPending(count: number): void;
  /** A task was pending at a stage the pipeline no longer has: dead-letter it with ERR_UNKNOWN_ADDRESS. */
  stageGone(env: Envelope, stage: string, attempts: number, message: string): void;
}

/**
 * Resumes the tasks a previous run of this pipeline left pending: each stage pages its own
 * backlog in from the journal as its inbox has room. Tasks at a stage that no longer exists are
 * dead-lettered with ERR_UNKNOWN_ADDRESS. Returns how many tasks were pending.
 */
export function recoverPending(durable: DurableLog, target: RecoveryTarget): number {
  const journal = durable.journal;
  let recovered = 0;
  durable.noteCrashedRuns();
  for (const [name, { count, maxSeq }] of journal.pendingStages()) {
    target.countPending(count);
    recovered += count;
    if (target.hasStage(name)) {
      durable.addBacklog(name, maxSeq);
      continue;
    }
    for (let after = 0; ; ) {
      const rows = journal.pendingAt(name, after, maxSeq, 1000);
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.seq;
      for (const row of rows) {
        const env = envelopeOf(row);
        durable.live.add(row.id);
        const message = `task ${row.id} was pending at stage '${name}', which pipeline '${target.name}' no longer has; add the stage back and replay it.`;
        target.stageGone(env, name, row.attempts, message);
      }
    }
  }
  if (!durable.hasAnyBacklog()) journal.recovered();
  if (recovered > 0) target.log.info({ recovered }, 'recovered pending tasks from the journal');
  return recovered;
}
