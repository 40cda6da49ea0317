// baton-actors/otel: OpenTelemetry spans for Baton's handler runs. Needs @opentelemetry/api (an
// optional peer dependency); Baton itself never loads it unless this subpath is imported.
import { createHash } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Span, type Tracer } from '@opentelemetry/api';
import { runChannel, type RunTrace } from '../system/index.js';

/** What `traceRuns` takes. Every option is optional. */
export interface TraceRunsOptions {
  /** The tracer spans are made with. Optional; defaults to `trace.getTracer('baton-actors')` of the global provider. */
  readonly tracer?: Tracer;
}

/** Stops the spans (unsubscribes from the run channel). */
export interface RunTracing {
  /** Unsubscribes: runs from now on make no span (spans of runs in progress still end). */
  close(): void;
}

/**
 * One span per handler run, named `<stage> run`, with the attributes `baton.pipeline`, `baton.stage`,
 * `baton.task_id` and `baton.attempt`; a run that throws, rejects or times out ends with status ERROR
 * and the exception recorded.
 *
 * Every run of one task, at every stage, on every attempt, after a crash, in any process (a pipeline
 * across processes on NATS), is in one trace: the trace id and the parent span id are derived from the
 * pipeline and the task id (SHA-256), so nothing has to travel with the task. The parent is the task
 * itself, a span no one records: backends show the runs under one trace whose root is missing.
 * Replaying a dead letter adds its new runs to the same trace.
 *
 * It listens on the `baton:run` tracing channel, so it costs what tracing costs (synchronous stages
 * leave their fast lane) for every system in the process.
 */
export function traceRuns(options: TraceRunsOptions = {}): RunTracing {
  const tracer = options.tracer ?? trace.getTracer('baton-actors');
  const spans = new WeakMap<RunTrace, Span>();
  const finish = (run: RunTrace): void => {
    const span = spans.get(run);
    if (span === undefined) return;
    spans.delete(run);
    if (run.error !== undefined) {
      const error = run.error instanceof Error ? run.error : new Error(String(run.error));
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    }
    span.end();
  };
  const handlers = {
    start: (run: RunTrace) => {
      const slash = run.path.indexOf('/');
      const pipeline = run.path.slice(0, slash);
      const stage = run.path.slice(slash + 1);
      const parent = trace.setSpanContext(ROOT_CONTEXT, taskSpanContext(pipeline, run.taskId));
      const span = tracer.startSpan(
        `${stage} run`,
        { kind: SpanKind.INTERNAL, attributes: { 'baton.pipeline': pipeline, 'baton.stage': stage, 'baton.task_id': run.taskId, 'baton.attempt': run.attempt } },
        parent,
      );
      spans.set(run, span);
    },
    end: (run: RunTrace) => {
      if (run.async !== true) finish(run);
    },
    asyncStart: () => undefined,
    asyncEnd: finish,
    error: () => undefined,
  };
  runChannel.subscribe(handlers);
  return { close: () => void runChannel.unsubscribe(handlers) };
}

/**
 * The span context every run of task `taskId` in `pipeline` hangs from: a trace id and a span id
 * derived from them (the first 16 and the next 8 bytes of a SHA-256), sampled, remote. Use it to find
 * a task's trace, or to link your own spans to it.
 */
export function taskSpanContext(pipeline: string, taskId: string): { traceId: string; spanId: string; traceFlags: number; isRemote: boolean } {
  const hex = createHash('sha256').update(`baton\0${pipeline}\0${taskId}`).digest('hex');
  return { traceId: hex.slice(0, 32), spanId: hex.slice(32, 48), traceFlags: TraceFlags.SAMPLED, isRemote: true };
}
