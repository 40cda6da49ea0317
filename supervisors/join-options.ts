import { invalidOption } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { PipelineOptions } from './pipeline-types.js';

/** What `system.joinPipeline` takes: a pipeline's options, and the stages this process hosts. */
export interface JoinOptions extends PipelineOptions {
  /**
   * The names of the stages this process runs (their tasks come from any process); the others are
   * hosted elsewhere. Required; [] for a process that only sends and reads outcomes.
   */
  readonly host: readonly string[];
  /** Messages the pipeline's work stream holds at most before `send` waits. Optional; defaults to 1,000,000. */
  readonly maxPending?: number;
  /**
   * How long the server waits for a task in hand before it gives it to another process: the time a
   * killed process's tasks take to come back. In-progress acks every third of it keep long runs.
   * Set by the first process that joins (the stage consumers keep it). Optional; defaults to 30,000 ms.
   */
  readonly ackWaitMs?: number;
  /**
   * Stages that order by key (`orderByKey`) spread their tasks over this many key partitions, each
   * served one task at a time by whichever process asks: a key's tasks keep their order across every
   * process, and at most this many tasks of the stage run at once in all of them. Every process must
   * give the same number (a different one is refused). Optional; defaults to 16 (1-256).
   */
  readonly keyPartitions?: number;
}

/** The options a pipeline of one process takes (joinPipeline's own left out). */
export function stripJoin(options: JoinOptions): PipelineOptions {
  const { host: _host, maxPending: _max, ackWaitMs: _ack, keyPartitions: _parts, ...rest } = options;
  return rest;
}

/** Validates joinPipeline's options: ERR_INVALID_OPTION naming the bad one and what it must be. */
export function checkJoinOptions(options: JoinOptions): void {
  if (options === null || typeof options !== 'object') throw invalidOption('joinPipeline(options)', options, 'an object { name, stages, host }');
  checkKeys(options, ['name', 'stages', 'defaults', 'supervisor', 'keepCompletedMs', 'host', 'maxPending', 'ackWaitMs', 'keyPartitions'], `joinPipeline '${String(options.name)}'`);
  if (options.keyPartitions !== undefined && !(Number.isInteger(options.keyPartitions) && options.keyPartitions >= 1 && options.keyPartitions <= 256)) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.keyPartitions`, options.keyPartitions, 'an integer from 1 to 256');
  }
  if (options.ackWaitMs !== undefined && !(Number.isInteger(options.ackWaitMs) && options.ackWaitMs >= 1_000)) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.ackWaitMs`, options.ackWaitMs, 'an integer number of ms >= 1,000');
  }
  const names = Array.isArray(options.stages) ? options.stages.map((s) => s?.name) : [];
  if (!Array.isArray(options.host) || !options.host.every((h) => typeof h === 'string')) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.host`, options.host, `a list of the stage names this process runs (of ${names.join(', ')}), [] for none`);
  }
  for (const h of options.host) {
    if (!names.includes(h)) throw invalidOption(`joinPipeline '${String(options.name)}'.host`, h, `a stage of the pipeline (${names.join(', ')})`);
  }
  if (options.maxPending !== undefined && !(Number.isInteger(options.maxPending) && options.maxPending >= 1)) {
    throw invalidOption(`joinPipeline '${String(options.name)}'.maxPending`, options.maxPending, 'an integer >= 1');
  }
}
