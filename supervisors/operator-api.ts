import { BatonError } from '../src/errors.js';
import type { PipelineJournal } from '../src/journal/journal.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { envelopeOf, type DurableLog } from './durable-log.js';
import type { Envelope } from '../actors/envelope.js';
import type { Outcome } from '../actors/outcomes.js';
import { outcomeOf } from './stored-outcome.js';

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
  stageNamed: (name: string) => AgentSupervisor | undefined,
  adopt: (stage: AgentSupervisor, env: Envelope) => void,
): number {
  const journal = durable.journal;
  let n = 0;
  for (const id of ids) {
    const rec = journal.outcome(id);
    const stage = rec && stageNamed(rec.stage);
    if (rec?.status !== 'dead' || stage === undefined) continue;
    journal.commit([{ op: 'replay', id }]);
    const row = journal.task(id);
    if (row === undefined) continue;
    const env = envelopeOf(row);
    durable.live.add(id);
    adopt(stage, env);
    n++;
  }
  return n;
}
