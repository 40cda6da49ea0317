import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { agent, createSystem, promClientMetrics, RUN_BUCKETS } from '../../system/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('run-time histograms (createSystem({ timings: true }))', () => {
  it('time every run per stage, sync and async, failures and timeouts included, into cumulative Prometheus buckets', async () => {
    const system = createSystem({ logger: false, timings: true });
    try {
      const pipe = system.spawnPipeline<number, number>({
        name: 'p',
        stages: [
          agent({ name: 'fast', handle: (x: number) => x }),
          agent({ name: 'slow', handle: async (x: number) => { await sleep(30); if (x === 2) throw new Error('bad'); return x; }, retry: { maxAttempts: 1 } }),
        ],
      });
      for (const x of [1, 2, 3]) await pipe.send(x);
      await pipe.drain();
      const fast = system.runTimes().get('p/fast')!;
      const slow = system.runTimes().get('p/slow')!;
      expect(fast.count).toBe(3);
      expect(slow.count).toBe(3); // the failed run too
      // 30 ms of waiting: no slow run is in a bucket of 25 ms or less.
      const upTo25ms = RUN_BUCKETS.findIndex((b) => b === 0.025);
      expect(slow.counts.slice(0, upTo25ms + 1).reduce((a, b) => a + b, 0)).toBe(0);
      expect(slow.sum).toBeGreaterThanOrEqual(0.09 * 0.9);
      const lines = system.metrics().split('\n').filter((l) => l.startsWith('baton_stage_run_seconds'));
      const buckets = lines.filter((l) => l.startsWith('baton_stage_run_seconds_bucket{pipeline="p",stage="slow"')).map((l) => Number(l.split(' ')[1]));
      expect(buckets).toHaveLength(RUN_BUCKETS.length + 1);
      expect(buckets.every((v, i) => i === 0 || v >= buckets[i - 1]!)).toBe(true); // cumulative
      expect(buckets.at(-1)).toBe(3);
      expect(lines).toContain('baton_stage_run_seconds_count{pipeline="p",stage="fast"} 3');
      expect(system.metrics()).toContain('# TYPE baton_stage_run_seconds histogram');
    } finally {
      await system.shutdown();
    }
  });

  it('time how long tasks wait in each stage\'s inbox before their first run there', async () => {
    const system = createSystem({ logger: false, timings: true });
    try {
      const pipe = system.spawnPipeline<number, number>({
        name: 'p',
        stages: [agent({ name: 'one', handle: async (x: number) => (await sleep(30), x), concurrency: 1 })],
      });
      for (const x of [1, 2, 3]) await pipe.send(x);
      await pipe.drain();
      const q = system.queueTimes().get('p/one')!;
      expect(q.count).toBe(3);
      // The second waited for one 30 ms run, the third for two.
      expect(q.sum).toBeGreaterThanOrEqual(0.09 * 0.9);
      expect(system.metrics()).toMatch(/^baton_stage_queued_seconds_count\{pipeline="p",stage="one"\} 3$/m);
    } finally {
      await system.shutdown();
    }
  });

  it('are off by default: no histogram, nothing listening on the run channel', async () => {
    const system = createSystem({ logger: false });
    const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    await pipe.send(1);
    await pipe.drain();
    expect(system.runTimes().size).toBe(0);
    expect(system.metrics()).not.toContain('baton_stage_run_seconds');
    await system.shutdown();
    expect(() => createSystem({ timings: 'yes' as never })).toThrow(/timings must be true or false/);
  });

  it('stop listening at shutdown: a later system\'s runs are not timed into a closed one', async () => {
    const first = createSystem({ logger: false, timings: true });
    await first.shutdown();
    const second = createSystem({ logger: false });
    const pipe = second.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => x })] });
    await pipe.send(1);
    await pipe.drain();
    await second.shutdown();
    expect(first.runTimes().size).toBe(0);
  });
});

describe('promClientMetrics: Baton in a prom-client registry', () => {
  it('registers every family and scrapes the same samples as system.metrics(), beside the user\'s own metrics', async () => {
    const system = createSystem({ logger: false, timings: true });
    try {
      const registry = new Registry();
      for (const m of promClientMetrics(system)) registry.registerMetric(m as never);
      const pipe = system.spawnPipeline<number, number>({ name: 'legal', stages: [agent({ name: 'parse', handle: (x: number) => x })] });
      for (const x of [1, 2]) await pipe.send(x);
      await pipe.drain();
      const scraped = await registry.metrics();
      const samples = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();
      expect(samples(scraped)).toEqual(samples(system.metrics()));
      expect(scraped).toContain('baton_pipeline_tasks_completed_total{pipeline="legal"} 2');
      expect(scraped).toContain('# TYPE baton_stage_run_seconds histogram');
      expect(() => registry.registerMetric(promClientMetrics(system)[0] as never)).toThrow(/already been registered/);
    } finally {
      await system.shutdown();
    }
  });
});
