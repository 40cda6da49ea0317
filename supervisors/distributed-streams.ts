import type { Outcome } from '../actors/outcomes.js';
import type { NatsJournal } from '../src/journal/nats.js';
import { PipelineWire } from '../src/journal/nats-wire.js';
import { outcomeOf } from './stored-outcome.js';

/**
 * A distributed pipeline's streams on the server, for tools (the CLI) that run no part of it: its
 * dead letters, their replay, the tasks waiting at its stages. Any process may do these (there is no
 * single writer across processes): a replay publishes the dead letter to its stage in a new life and
 * deletes it from the dead-letter stream, as `pipeline.replay(ids)` does.
 */
export interface DistributedStreams {
  readonly pipeline: string;
  /** The dead letters on the server, oldest first. */
  deadLetters(): Promise<Outcome[]>;
  /** Sends the named dead letters (or all, with `'all'`) back to their stages; resolves the ids replayed. */
  replay(ids: readonly string[] | 'all'): Promise<string[]>;
  /** Messages waiting or in hand at its stages. */
  pendingWork(): Promise<number>;
}

/** The distributed pipelines whose streams the journal's server holds (`joinPipeline` made them). */
export function distributedPipelines(journal: NatsJournal): Promise<string[]> {
  return PipelineWire.pipelines(journal.wire);
}

/** The streams of distributed pipeline `pipeline`, or undefined if the server has none for it. Makes nothing. */
export async function distributedStreams(journal: NatsJournal, pipeline: string): Promise<DistributedStreams | undefined> {
  const wire = await PipelineWire.attach(journal.wire, pipeline);
  if (wire === undefined) return undefined;
  return {
    pipeline,
    deadLetters: async () => (await wire.deadLetters()).map((d) => outcomeOf(d.outcome)),
    replay: async (ids) => {
      const wanted = ids === 'all' ? undefined : new Set(ids);
      const done: string[] = [];
      for (const d of await wire.deadLetters()) {
        if (wanted !== undefined && !wanted.has(d.outcome.id)) continue;
        wanted?.delete(d.outcome.id);
        await wire.replayDead(d);
        done.push(d.outcome.id);
      }
      return done;
    },
    pendingWork: () => wire.pendingWork(),
  };
}
