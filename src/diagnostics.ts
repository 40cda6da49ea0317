import diagnostics from 'node:diagnostics_channel';

/**
 * Baton's `node:diagnostics_channel` channels, for tools that watch a process from outside its code
 * (APMs, OpenTelemetry instrumentations, a test). Nothing is published unless someone subscribes:
 * each publish site checks `hasSubscribers` first, so an unwatched system pays one boolean read per
 * lifecycle event and none per task.
 *
 * - `baton:<event type>` (`baton:crashed`, `baton:dead-lettered`, ... one per BatonEvent type):
 *   the same event objects `system.events` delivers.
 * - `baton:run`, a tracing channel (`tracing:baton:run:start`, `:end`, `:asyncStart`, `:asyncEnd`,
 *   `:error`) around each handler run, with a `RunTrace` context: start and end around the call,
 *   asyncStart/asyncEnd when a returned promise settles, error when the run failed (a throw, a
 *   rejection or a timeout; `error` holds what was thrown). While anyone subscribes, a stage leaves
 *   its fast lane for the general one, which publishes.
 * A subscriber must not throw: Node reports a throwing subscriber as an uncaught exception (its
 * documented behaviour for every channel), which Baton cannot contain. Use `system.events` for code
 * that may throw: its listeners are contained.
 */
export const CHANNEL_PREFIX = 'baton:';

/** The context of one handler run on the `baton:run` tracing channel. */
export interface RunTrace {
  /** The stage's address: `<pipeline>/<stage>`. */
  readonly path: string;
  readonly taskId: string;
  /** 1 for the first run of the task at this stage. */
  readonly attempt: number;
  /** What the handler returned or its promise resolved to (set before end / asyncEnd). */
  result?: unknown;
  /** What the handler threw or rejected with, or the timeout (set before error). */
  error?: unknown;
  /** Set before `end` when the handler returned a promise: the run ends at asyncEnd, not at end. */
  async?: boolean;
  /**
   * How long the task waited in the stage's inbox before this run, in ms: set on its first run at
   * the stage when it arrived while someone traced (undefined for retries, recovered tasks, and tasks
   * that arrived before anyone subscribed).
   */
  queuedMs?: number;
}

/**
 * How many listeners want `RunTrace.queuedMs` (the run-time histograms of createSystem({ timings: true })).
 * Noting when each task enters an inbox costs two clock reads per task and stage (the 5-stage sync
 * pipeline traced ran 1.1 M tasks/s with them, 2.0 M without), so a stage notes arrivals only while
 * one of them listens, not for every tracer.
 */
export const arrivals = { wanted: 0 };

/** The tracing channel around handler runs. */
export const runChannel = diagnostics.tracingChannel<object, RunTrace>(`${CHANNEL_PREFIX}run`);

const eventChannels = new Map<string, diagnostics.Channel>();

/** The channel of one lifecycle event type (made once per type). */
export function eventChannel(type: string): diagnostics.Channel {
  let channel = eventChannels.get(type);
  if (channel === undefined) eventChannels.set(type, (channel = diagnostics.channel(`${CHANNEL_PREFIX}${type}`)));
  return channel;
}

/** A traced run's synchronous part threw: error, then end. */
export function traceEnd(trace: RunTrace, err: unknown): void {
  trace.error = err;
  runChannel.error.publish(trace);
  runChannel.end.publish(trace);
}

/** A traced run's promise settled, timed out or was taken back: asyncStart, error if it failed, asyncEnd. */
export function traceSettled(trace: RunTrace, ok: boolean, value: unknown): void {
  if (ok) trace.result = value;
  else trace.error = value;
  runChannel.asyncStart.publish(trace);
  if (!ok) runChannel.error.publish(trace);
  runChannel.asyncEnd.publish(trace);
}
