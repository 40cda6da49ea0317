import type { PipelineStats, StageStats } from '../../system/index.js';
import type { Check } from './audit.js';
import type { OutageReport } from './faults.js';

/** The shapes the demo reports: live progress and the summary at the end (printed, or as --json). */

export interface Progress {
  readonly elapsedMs: number;
  readonly docs: number;
  readonly sent: number;
  readonly pipeline: PipelineStats;
  readonly rssBytes: number;
}

export interface DeadLetterGroup {
  readonly stage: string;
  /** Baton's reason code (ERR_TASK_FAILED, ERR_TIMEOUT, ...). */
  readonly code: string;
  /** The code of the error the handler threw (ERR_PDF_CHECKSUM, ...). */
  readonly cause: string;
  readonly count: number;
}

/** What a resumed run found in the journal before the pipeline recovered it. */
export interface JournalCounts {
  readonly pending: number;
  readonly completed: number;
  readonly dead: number;
  /** Tasks whose run was in progress when the process died. */
  readonly runningAtCrash: number;
}

/** Told before the batch starts: where it runs and whether it resumes a crashed run. */
export interface StartInfo {
  readonly journal: 'sqlite' | 'memory';
  readonly journalPath?: string;
  readonly storePath?: string;
  /** Set when resuming: what the journal held. */
  readonly resuming?: JournalCounts;
  /** The document count at which this run will kill itself, if it will. */
  readonly crashAt?: number;
  /** --crash-at was given but this run resumes, so it will not crash. */
  readonly crashIgnored: boolean;
}

export interface Summary {
  readonly docs: number;
  readonly seed: number;
  readonly corruptRate: number;
  /** 'sqlite': the durable default; 'memory': no journal (--memory). */
  readonly journal: 'sqlite' | 'memory';
  /** This run resumed a batch that a crashed run left in the journal. */
  readonly resumed: boolean;
  /** When resumed: what the journal held at start. */
  readonly journalAtStart?: JournalCounts;
  /** Unfinished tasks the pipeline recovered from the journal at start. */
  readonly recovered: number;
  /** The journal file, when durable. */
  readonly journalPath?: string;
  /** The store agent's SQLite file, when durable. */
  readonly storePath?: string;
  /** Journal file plus WAL at the end, in bytes (completed tasks are kept 24 h). */
  readonly journalBytes?: number;
  /** journalBytes / docs. */
  readonly journalBytesPerDoc?: number;
  readonly sent: number;
  readonly completed: number;
  readonly deadLettered: number;
  readonly deadLetters: readonly DeadLetterGroup[];
  readonly retries: number;
  readonly retriesByStage: Readonly<Record<string, number>>;
  readonly restartsByStage: Readonly<Record<string, number>>;
  /** 'breaker-opened' events: outages plus re-openings after failed probes. */
  readonly breakerOpenings: number;
  readonly breakerOpeningsByStage: Readonly<Record<string, number>>;
  /** Openings from closed (each one an outage seen by a stage). */
  readonly breakerOutages: number;
  readonly faults: { readonly transient: number; readonly crash: number; readonly hang: number; readonly outage: OutageReport };
  readonly elapsedMs: number;
  /** Documents whose outcome this run produced, per second. */
  readonly throughput: number;
  /** Send to outcome, for the documents this run sent (not those recovered from a crashed run). */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number };
  readonly peakRssMb: number;
  readonly stages: readonly StageStats[];
  /** Set if the pipeline itself failed (a stage escalated past the pipeline's intensity). */
  readonly failure?: string;
  readonly checks: readonly Check[];
  readonly ok: boolean;
}
