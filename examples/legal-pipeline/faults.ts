import { docIndex } from './documents.js';
import { unitHash } from './hash.js';
import type { ResultRow, ResultStore } from './store.js';

/**
 * Seeded faults for the demo. Which documents are struck is a pure function of (seed, kind, id),
 * so a run replays the same faults whatever order the stages happen to run in. A struck document
 * fails once at its stage and succeeds when retried: these are transient faults, unlike the
 * corrupt documents, which fail every time.
 */
export interface FaultOptions {
  readonly seed: number;
  /** Share of documents whose extract call throws once (a flaky model call). Default 0.02. */
  readonly transientRate: number;
  /** Share of documents whose classify call corrupts the worker's state, then throws. Default 0.005. */
  readonly crashRate: number;
  /** Share of documents whose validate call hangs until the stage's timeout aborts it. Default 0.0005. */
  readonly hangRate: number;
  /**
   * The storage outage: every write fails from the moment `atFraction` of the batch is stored,
   * for `durationMs` of wall time. Relative to progress, so it lands mid-run at any batch size.
   * Default { atFraction: 0.3, durationMs: 3000 }; false for none.
   */
  readonly outage: { readonly atFraction: number; readonly durationMs: number } | false;
}

export const DEFAULT_FAULTS: FaultOptions = Object.freeze({ seed: 42, transientRate: 0.02, crashRate: 0.005, hangRate: 0.0005, outage: { atFraction: 0.3, durationMs: 3000 } });

export type FaultKind = 'transient' | 'crash' | 'hang';

/** A fault's error: `code` is what shows up in outcomes and dead letters. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
  constructor(
    readonly code: 'ERR_MODEL_UNAVAILABLE' | 'ERR_WORKER_CRASHED' | 'ERR_STORAGE_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

const BIT: Record<FaultKind, number> = { transient: 1, crash: 2, hang: 4 };

export class FaultPlan {
  readonly injected: Record<FaultKind, number> = { transient: 0, crash: 0, hang: 0 };
  /** One byte per document, a bit per kind that has struck it: bounded by the batch, not by the faults. */
  private readonly struck: Uint8Array;
  private readonly rates: Record<FaultKind, number>;

  constructor(
    readonly options: FaultOptions,
    documents: number,
  ) {
    this.rates = { transient: options.transientRate, crash: options.crashRate, hang: options.hangRate };
    this.struck = new Uint8Array(documents);
  }

  /** Whether this call of this document is struck by `kind`: true at most once per document and kind. */
  strikes(kind: FaultKind, id: string): boolean {
    const rate = this.rates[kind];
    if (rate <= 0 || unitHash(`${this.options.seed}:${kind}:${id}`) >= rate) return false;
    const i = docIndex(id);
    if ((this.struck[i]! & BIT[kind]) !== 0) return false;
    this.struck[i] = this.struck[i]! | BIT[kind];
    this.injected[kind]++;
    return true;
  }
}

export interface OutageReport {
  /** Rows stored when the outage began. */
  readonly afterRows: number;
  /** Milliseconds from the run's start; undefined if the outage never began. */
  readonly startMs: number | undefined;
  readonly endMs: number | undefined;
  /** Writes refused during the outage. */
  readonly rejected: number;
}

/** A ResultStore that refuses every write during the outage window, like a database that is down. */
export class OutageStore implements ResultStore {
  private startedAt: number | undefined = undefined;
  private rejected = 0;
  private readonly afterRows: number;

  constructor(
    private readonly inner: ResultStore,
    private readonly outage: FaultOptions['outage'],
    batchSize: number,
    private readonly origin = performance.now(),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.afterRows = outage === false ? Infinity : Math.floor(outage.atFraction * batchSize);
  }

  put(id: string, row: ResultRow): void {
    if (this.down()) {
      this.rejected++;
      throw new InjectedFault('ERR_STORAGE_UNAVAILABLE', `result store unavailable (simulated outage); ${id} was not written`);
    }
    this.inner.put(id, row);
  }

  count(): number {
    return this.inner.count();
  }

  ids(): Iterable<string> {
    return this.inner.ids();
  }

  report(): OutageReport {
    const durationMs = this.outage === false ? 0 : this.outage.durationMs;
    const startMs = this.startedAt === undefined ? undefined : this.startedAt - this.origin;
    return { afterRows: this.afterRows, startMs, endMs: startMs === undefined ? undefined : startMs + durationMs, rejected: this.rejected };
  }

  private down(): boolean {
    if (this.outage === false) return false;
    if (this.startedAt === undefined) {
      if (this.inner.count() < this.afterRows) return false;
      this.startedAt = this.now();
    }
    return this.now() < this.startedAt + this.outage.durationMs;
  }
}
