import { describe, it } from 'vitest';
import { expect } from 'vitest';
import { agent, memoryJournal } from '../../system/index.js';
import { assertAll, buildPipeline, runScenario, type FaultPlan, type PipelineShape, type WorkItem } from '../../testkit/index.js';

/**
 * Counterexamples the generated properties found (shrunk by fast-check), kept as fixed cases so
 * each bug stays fixed whatever seed a CI run draws. Each failed before its fix.
 */
const stage = (name: string, concurrency: number, capacity: number, isAsync: boolean) => ({ name, concurrency, capacity, async: isAsync });
const items = (n: number, keys = 1): WorkItem[] => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, n: i, key: `k${i % keys}` }));

async function replay(shape: PipelineShape, work: WorkItem[], plan: FaultPlan): Promise<void> {
  const { stages, options } = buildPipeline(shape);
  const rec = await runScenario({ stages, pipeline: options, inputs: work, plan, keyOf: (w) => w.key, idOf: (w) => w.id, taskIdOf: (x) => (x as WorkItem).id });
  assertAll(rec);
}

describe('fixed counterexamples', () => {
  it('a stage waiting for room downstream is woken even when another producer waits on the same inbox (lost wake-up)', () =>
    replay(
      { stages: [stage('s0', 1, 1, true), stage('s1', 4, 3, false), stage('s2', 1, 1, true)], routed: true, orderByKey: false, maxAttempts: 2, timeoutMs: 100 },
      items(11),
      { seed: 0, stages: { s0: [{ kind: 'flaky', p: 0.5 }], s1: [{ kind: 'init-fails', times: 1 }] } },
    ));

  it('a run that started before an outage does not close the open breaker when it ends well', () =>
    replay(
      { stages: [stage('s0', 2, 1, false), stage('s1', 3, 6, false), stage('s2', 4, 2, false), stage('s3', 1, 4, false)], routed: false, orderByKey: false, maxAttempts: 1, timeoutMs: 100 },
      items(20),
      { seed: 0, stages: { s0: [{ kind: 'outage', fromMs: 1, toMs: 2 }, { kind: 'delay', minMs: 0, maxMs: 17 }] } },
    ));

  it('a failed probe waits without breaking the inbox bound', () =>
    replay(
      { stages: [stage('s0', 2, 5, false), stage('s1', 4, 5, true), stage('s2', 3, 6, true), stage('s3', 4, 3, false)], routed: false, orderByKey: false, maxAttempts: 2, timeoutMs: 1_000 },
      items(12),
      { seed: 0, stages: { s3: [{ kind: 'outage', fromMs: 0, toMs: 839 }] } },
    ));

  it('keeps per-key order across a kill when a task was mid-run downstream', () =>
    replay(
      { stages: [stage('s0', 1, 2, true), stage('s1', 1, 1, false), stage('s2', 1, 1, false)], routed: false, orderByKey: true, maxAttempts: 2, timeoutMs: 100 },
      items(4),
      { seed: 0, stages: {}, kills: [1, 2] },
    ));

  it('keeps per-key order across a kill when a task was waiting for its retry', () =>
    replay(
      { stages: [stage('s0', 3, 5, false), stage('s1', 2, 2, true)], routed: false, orderByKey: true, maxAttempts: 4, timeoutMs: 250 },
      items(19, 2),
      { seed: 0, stages: { s0: [{ kind: 'flaky', p: 0.1 }] }, kills: [3] },
    ));

  it('fans out with a journal: two branches of a task that meet at one stage each page in (each has its own seq)', () =>
    replay(
      { stages: [stage('s0', 1, 1, false), stage('s1', 1, 1, false), stage('s2', 1, 1, false)], routed: true, fanOutOnce: true, orderByKey: false, maxAttempts: 1, timeoutMs: 100 },
      items(1),
      { seed: 0, stages: { s2: [{ kind: 'delay', minMs: 0, maxMs: 0 }] }, kills: [1] },
    ));

  it('fans out with a journal: a recovered branch that ends before its drop is committed is not paged in again at its next stage', async () => {
    // Flaky in its effect (it depends on when a group commit lands): before the fix about 1 run in 2
    // of this case counted a branch row twice and `drain` never resolved. Five runs.
    for (let i = 0; i < 5; i++) {
      await replay(
        { stages: [stage('s0', 3, 6, false), stage('s1', 3, 3, true), stage('s2', 4, 7, false), stage('s3', 1, 8, false)], routed: true, fanOutOnce: true, orderByKey: false, maxAttempts: 4, timeoutMs: 250 },
        items(18, 2),
        { seed: 0, stages: { s1: [{ kind: 'init-fails', times: 1 }], s3: [{ kind: 'outage', fromMs: 1, toMs: 1147 }, { kind: 'throw-on-call', call: 36 }] }, kills: [32, 21] },
      );
    }
  });

  it('journals the history of a handler that throws text cut inside an emoji (an unpaired surrogate) and dead-letters its task', async () => {
    const stages = [agent({ name: 'cut', retry: { maxAttempts: 2, backoff: { minMs: 1, maxMs: 1 } }, handle: (x: number) => {
      if (x === 1) throw new Error('truncated \uD83D');
      return x;
    } })];
    const rec = await runScenario({ stages, inputs: [0, 1, 2], journal: memoryJournal() });
    assertAll(rec);
    const dead = rec.outcomes.find((o) => o.status === 'dead-lettered');
    expect(dead?.errors.map((e) => e.error.message)).toEqual(['truncated \uFFFD', 'truncated \uFFFD']);
  });
});
