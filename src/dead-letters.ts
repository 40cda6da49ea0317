import type { Logger } from 'pino';
import type { ErrorInfo } from './errors.js';

/** A message that could not be processed, kept for observers instead of vanishing. */
export interface DeadLetter {
  /** The address it was sent to. */
  readonly to: string;
  readonly message: unknown;
  /** dropped: a full mailbox with the 'drop' policy; crashed: its handler threw; stopped: its actor ended; unknown-address: nothing lives there. */
  readonly reason: 'dropped' | 'crashed' | 'stopped' | 'unknown-address';
  readonly error?: ErrorInfo;
  readonly at: number;
}

/** The system's dead-letter office for plain actors (pipelines report theirs as outcomes). */
export class DeadLetters {
  private listeners: ((d: DeadLetter) => void)[] = [];
  count = 0;

  constructor(private readonly log: Logger) {}

  /** Calls `listener` with every dead letter from now on; returns a function that unsubscribes. A listener that throws is logged and skipped. */
  on(listener: (d: DeadLetter) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Records a dead letter and tells the listeners (used by the runtime). */
  publish(d: DeadLetter): void {
    this.count++;
    this.log.warn({ to: d.to, reason: d.reason, error: d.error?.message }, 'dead letter');
    for (const l of this.listeners) {
      try {
        l(d);
      } catch (err) {
        this.log.error({ err }, 'dead-letter listener threw; ignored');
      }
    }
  }
}
