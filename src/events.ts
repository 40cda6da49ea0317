import type { Logger } from 'pino';
import { eventChannel } from './diagnostics.js';
import type { ErrorInfo } from './errors.js';

/**
 * Lifecycle events. They are for observers (dashboards, tests, alerting), not for the hot path:
 * a task that succeeds first time raises none.
 */
export type BatonEvent =
  | { readonly type: 'started'; readonly path: string; readonly at: number }
  /** A run (or an actor's receive, or `init`) failed. `charged`: for a task run, whether it cost the task an attempt (false when the breaker took it on the agent). */
  | { readonly type: 'crashed'; readonly path: string; readonly at: number; readonly error: ErrorInfo; readonly taskId?: string; readonly charged?: boolean }
  | { readonly type: 'restarted'; readonly path: string; readonly at: number; readonly restarts: number }
  | { readonly type: 'retried'; readonly path: string; readonly at: number; readonly taskId: string; readonly attempt: number; readonly delayMs: number }
  | { readonly type: 'dead-lettered'; readonly path: string; readonly at: number; readonly taskId: string; readonly error: ErrorInfo }
  | { readonly type: 'escalated'; readonly path: string; readonly at: number; readonly reason: string }
  | { readonly type: 'breaker-opened'; readonly path: string; readonly at: number; readonly probeInMs: number; readonly probes: number }
  | { readonly type: 'breaker-closed'; readonly path: string; readonly at: number; readonly heldMs: number }
  /** A rate-limit refusal holds the stage's inbox `until` (clock ms); `refusals` in a row so far. */
  | { readonly type: 'throttled'; readonly path: string; readonly at: number; readonly until: number; readonly retryAfterMs: number; readonly refusals: number }
  /** The first run after a hold was not refused: the stage runs again at its own pace. */
  | { readonly type: 'throttle-lifted'; readonly path: string; readonly at: number; readonly heldMs: number }
  /** The stage's budget is spent until `resetsAt`: tasks wait ('hold') or are dead-lettered ('dead-letter'). */
  | { readonly type: 'budget-exhausted'; readonly path: string; readonly at: number; readonly resetsAt: number; readonly onExhausted: 'hold' | 'dead-letter'; readonly key?: string | undefined }
  | { readonly type: 'stopped'; readonly path: string; readonly at: number; readonly reason: string }
  /** Dead letters were sent back to run again (`path`: the pipeline); `by` says who asked (audit). */
  | { readonly type: 'replayed'; readonly path: string; readonly at: number; readonly taskIds: readonly string[]; readonly by: string }
  /** A pending task was cancelled (pipeline.cancel): it ends as a dead letter with ERR_CANCELLED. */
  | { readonly type: 'cancelled'; readonly path: string; readonly at: number; readonly taskId: string; readonly reason: string }
  /** A send met a full first inbox whose overflow policy refuses ('rejected') or drops ('dropped'); `path`: that stage. */
  | { readonly type: 'overflowed'; readonly path: string; readonly at: number; readonly result: 'rejected' | 'dropped' }
  /** The journal recorded a group commit of `ops` writes for the pipeline at `path`, in `ms` (wall clock). */
  | { readonly type: 'journal-committed'; readonly path: string; readonly at: number; readonly ops: number; readonly ms: number };

/** The type of a lifecycle event: started, crashed, restarted, retried, dead-lettered, escalated, breaker-opened, breaker-closed, throttled, throttle-lifted, budget-exhausted, stopped, replayed, cancelled, overflowed, journal-committed. */
export type BatonEventType = BatonEvent['type'];
/** A listener of `system.events`. One that throws is logged and skipped. */
export type EventListener = (event: BatonEvent) => void;

const LEVEL: Record<BatonEventType, 'debug' | 'info' | 'warn' | 'error'> = {
  started: 'debug',
  crashed: 'info',
  restarted: 'debug',
  retried: 'debug',
  'dead-lettered': 'warn',
  escalated: 'error',
  'breaker-opened': 'warn',
  'breaker-closed': 'info',
  throttled: 'info',
  'throttle-lifted': 'info',
  'budget-exhausted': 'warn',
  stopped: 'info',
  replayed: 'info',
  cancelled: 'info',
  overflowed: 'debug',
  'journal-committed': 'debug',
};

/**
 * Fan-out of lifecycle events. A listener that throws is logged and skipped: an observer's
 * error never unwinds the runtime.
 */
export class EventStream {
  private listeners: EventListener[] = [];

  constructor(private readonly log: Logger) {}

  /** Calls `listener` for every event (or only those of `type`); returns a function that unsubscribes. */
  on(listener: EventListener): () => void;
  on<T extends BatonEventType>(type: T, listener: (event: Extract<BatonEvent, { type: T }>) => void): () => void;
  on(a: EventListener | BatonEventType, b?: (event: never) => void): () => void {
    const listener: EventListener =
      typeof a === 'function' ? a : (e) => e.type === a && (b as (event: BatonEvent) => void)(e);
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Delivers an event: logged (through the system's logger), published on its diagnostics channel if anyone subscribes, then given to each listener. */
  emit(event: BatonEvent): void {
    const level = LEVEL[event.type];
    if (this.log.isLevelEnabled(level)) this.log[level](event, event.type);
    // (Node catches a throwing diagnostics_channel subscriber itself and reports it as an uncaught
    // exception on a later tick, for every channel: publish never throws here.)
    const channel = eventChannel(event.type);
    if (channel.hasSubscribers) channel.publish(event);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err, event: event.type }, 'event listener threw; ignored');
      }
    }
  }
}
