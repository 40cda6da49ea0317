import type { ErrorInfo } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import { RingBuffer } from '../src/ring-buffer.js';
import type { AttemptError } from './envelope.js';

/** What every outcome says, however the task ended. */
interface OutcomeBase {
  readonly id: string;
  readonly key: string | undefined;
  /**
   * Every failed run, at every stage, oldest first; for a dead letter that no failed run ended (an
   * unknown route, a full inbox under 'drop', a stop), a last entry with what ended it (charged: false).
   */
  readonly errors: readonly AttemptError[];
  /** The stage where it ended. */
  readonly stage: string;
  /** Runs at that stage (for a dead letter: the attempts it was charged). */
  readonly attempts: number;
}

/** The task went through: `output` is the last stage's output (for a fanned-out task, every branch's `{ stage, output }`, in completion order). */
export interface CompletedOutcome<O = unknown> extends OutcomeBase {
  readonly status: 'completed';
  readonly output: O;
  readonly error?: undefined;
}

/** The task was quarantined: `error` says why, with a stable code (ERR_TASK_FAILED, ERR_TIMEOUT, ERR_UNKNOWN_ADDRESS, ...). */
export interface DeadLetteredOutcome extends OutcomeBase {
  readonly status: 'dead-lettered';
  readonly error: ErrorInfo & { readonly code: string };
  /** For a fanned-out task whose other branches completed: their `{ stage, output }`. */
  readonly output?: unknown;
}

/**
 * How an accepted task ended. Every accepted task gets exactly one. Narrow on `status`:
 * `if (o.status === 'completed') use(o.output); else log(o.error.code)`.
 */
export type Outcome<O = unknown> = CompletedOutcome<O> | DeadLetteredOutcome;

/** Options of `pipeline.outcomes()`. */
export interface OutcomesOptions {
  /** End the iteration once the pipeline has no pending task. Optional; defaults to false (end when the pipeline stops). */
  readonly untilDrained?: boolean;
  /**
   * Outcomes an iterator holds for a reader that has not asked for them yet. Optional; defaults to
   * 10,000 (about 2 MB). Past it the oldest held outcome is dropped for this iterator (not for the
   * pipeline: the task still ended, and with a journal its outcome is there to read back), the
   * iterator's `dropped` counts it, and a warning is logged. Each iterator gets every outcome and
   * holds its own buffer. A reader that must see every outcome uses `onOutcome`, which holds none.
   */
  readonly highWaterMark?: number;
}

/** The iterator `outcomes()` returns; `dropped` counts outcomes dropped past its high-water mark. */
export interface OutcomeIterator<O = unknown> extends AsyncIterableIterator<Outcome<O>> {
  readonly dropped: number;
}

export const DEFAULT_OUTCOMES_HIGH_WATER_MARK = 10_000;

type Listener = (o: Outcome) => void;

/**
 * Delivers outcomes to callbacks and async iterators. With nobody listening an outcome costs a
 * length check. A listener that throws is logged and skipped.
 */
export class OutcomeFeed {
  private listeners: Listener[] = [];
  private readonly enders = new Set<() => void>();

  constructor(private readonly log: Logger) {}

  get listening(): boolean {
    return this.listeners.length > 0;
  }

  on(listener: Listener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(outcome: Outcome): void {
    for (const l of this.listeners) {
      try {
        l(outcome);
      } catch (err) {
        this.log.error({ err, taskId: outcome.id }, 'outcome listener threw; ignored');
      }
    }
  }

  /**
   * An async iterator of outcomes from now on; `isDone` is asked after each outcome and when idle.
   * It holds at most `highWaterMark` outcomes a reader has not taken (the oldest goes first): an
   * iterator nobody reads held every outcome before, 190 B each, 473 MB after 2M tasks.
   */
  iterate(isDone: () => boolean, highWaterMark = DEFAULT_OUTCOMES_HIGH_WATER_MARK): OutcomeIterator {
    const buffer = new RingBuffer<Outcome>(16);
    let dropped = 0;
    // Every pending next() waits here (a caller may ask several times without awaiting); each one
    // woken re-checks the buffer and waits again if another took the outcome.
    let waiters: (() => void)[] = [];
    let ended = false;
    const notify = (): void => {
      const woken = waiters;
      waiters = [];
      for (const w of woken) w();
    };
    const unsubscribe = this.on((o) => {
      if (buffer.length >= highWaterMark) {
        buffer.shift();
        // Logged at the first drop and every 10,000th after, not per outcome.
        if (dropped++ % 10_000 === 0) this.log.warn({ dropped, highWaterMark }, 'an outcomes() iterator is not read fast enough: its oldest outcomes are dropped');
      }
      buffer.push(o);
      notify();
    });
    const end = (): void => {
      ended = true;
      notify();
    };
    this.enders.add(end);
    const finish = (): void => {
      unsubscribe();
      this.enders.delete(end);
    };
    const iterator: OutcomeIterator = {
      get dropped() {
        return dropped;
      },
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        for (;;) {
          const o = buffer.shift();
          if (o !== undefined) return { value: o, done: false };
          if (ended || isDone()) {
            finish();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => waiters.push(resolve));
        }
      },
      return: async () => {
        finish();
        buffer.clear();
        end(); // pending and later next() calls end too
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  /** Ends every iterator (the pipeline stopped). */
  endAll(): void {
    for (const end of [...this.enders]) end();
  }
}
