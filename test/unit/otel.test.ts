import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { taskSpanContext, traceRuns } from '../../otel/index.js';
import { agent, createSystem } from '../../system/index.js';

function tracedBy() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, tracing: traceRuns({ tracer: provider.getTracer('test') }) };
}

describe('baton-actors/otel: a span per handler run', () => {
  it('puts every run of a task, at every stage and attempt, in one trace of its own, with its attributes and failures', async () => {
    const { exporter, tracing } = tracedBy();
    const system = createSystem({ logger: false });
    try {
      let fails = 1;
      const pipe = system.spawnPipeline<number, number>({
        name: 'legal',
        stages: [
          agent({ name: 'parse', handle: (x: number) => x }),
          agent({ name: 'extract', handle: async (x: number) => { if (x === 1 && fails-- > 0) throw new Error('model down'); return x; }, retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 1, jitter: 0 } } }),
        ],
      });
      await pipe.send(1, { id: 'doc-1' });
      await pipe.send(2, { id: 'doc-2' });
      await pipe.drain();
    } finally {
      await system.shutdown();
      tracing.close();
    }
    const spans = exporter.getFinishedSpans();
    const of = (id: string) => spans.filter((s) => s.attributes['baton.task_id'] === id);
    const doc1 = of('doc-1');
    expect(doc1.map((s) => [s.name, s.attributes['baton.attempt'], s.status.code])).toEqual([
      ['parse run', 1, 0],
      ['extract run', 1, 2], // ERROR
      ['extract run', 2, 0],
    ]);
    const trace1 = taskSpanContext('legal', 'doc-1');
    expect(new Set(doc1.map((s) => s.spanContext().traceId))).toEqual(new Set([trace1.traceId]));
    expect(doc1.every((s) => s.parentSpanContext?.spanId === trace1.spanId)).toBe(true);
    expect(doc1[1]!.events.map((e) => e.name)).toEqual(['exception']);
    expect(doc1[1]!.status.message).toBe('model down');
    expect(doc1[0]!.attributes).toMatchObject({ 'baton.pipeline': 'legal', 'baton.stage': 'parse' });
    expect(of('doc-2').every((s) => s.spanContext().traceId === taskSpanContext('legal', 'doc-2').traceId)).toBe(true);
    expect(trace1.traceId).not.toBe(taskSpanContext('legal', 'doc-2').traceId);
  });

  it('ends the span of a run that times out with its timeout, and makes no span once closed', async () => {
    const { exporter, tracing } = tracedBy();
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline<number, number>({
      name: 'p',
      stages: [agent({ name: 'slow', handle: () => new Promise<number>(() => undefined), timeoutMs: 20, retry: { maxAttempts: 1 } })],
    });
    await pipe.send(1, { id: 'a' });
    await pipe.drain();
    tracing.close();
    await pipe.send(2, { id: 'b' });
    await pipe.drain();
    await system.shutdown();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => [s.attributes['baton.task_id'], s.status.code])).toEqual([['a', 2]]);
    expect(spans[0]!.status.message).toMatch(/timed out/);
  });
});
