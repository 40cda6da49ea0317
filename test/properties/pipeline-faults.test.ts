import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryJournal } from '../../system/index.js';
import { arbitraries, assertAll, buildPipeline, checkProperty, runScenario, type WorkItem } from '../../testkit/index.js';
import { asyncJournal } from '../support/async-journal.js';

/** A shape, a workload and a fault plan over that shape's stages. */
function scenario(options: { routing: boolean | 'journal'; maxKills: number }) {
  return fc.tuple(arbitraries.pipelineShape({ routing: options.routing }), arbitraries.workload()).chain(([shape, work]) =>
    arbitraries
      .faultPlan({ stages: shape.stages.map((s) => s.name), taskIds: work.map((w) => w.id), calls: work.length * 3, maxKills: options.maxKills })
      .map((plan) => ({ shape, work, plan })),
  );
}

const taskIdOf = (x: unknown) => (x as WorkItem).id;

describe('pipelines under generated fault plans', () => {
  it('keep every invariant in memory: conservation, progress, no upstream replay, isolation, key order, bounds, poison vs outage', async () => {
    await checkProperty(
      fc.asyncProperty(scenario({ routing: true, maxKills: 0 }), async ({ shape, work, plan }) => {
        const { stages, options } = buildPipeline(shape);
        const rec = await runScenario({ stages, pipeline: options, inputs: work, plan, keyOf: (w) => w.key, idOf: (w) => w.id, taskIdOf });
        assertAll(rec);
        expect(rec.accepted.length).toBe(work.length);
      }),
      { numRuns: 3_000 },
    );
  }, 170_000);

  it('keep every invariant on a journal when the process is killed at generated moments', async () => {
    await checkProperty(
      fc.asyncProperty(scenario({ routing: 'journal', maxKills: 2 }), async ({ shape, work, plan }) => {
        const { stages, options } = buildPipeline(shape);
        const rec = await runScenario({ stages, pipeline: options, inputs: work, plan, keyOf: (w) => w.key, idOf: (w) => w.id, taskIdOf });
        assertAll(rec);
        // Each planned kill happens at its call count, one at a time (a count reached while a kill is
        // pending waits for the next call), so kills beyond the scenario's last calls never happen.
        const planned = plan.kills ?? [];
        expect(rec.kills).toBeLessThanOrEqual(planned.length);
        if (planned.some((k) => k <= rec.calls.length)) expect(rec.kills).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 1_000 },
    );
  }, 170_000);

  it('keep every invariant on an asynchronous journal (commits and pages answer a turn later) when killed at generated moments', async () => {
    await checkProperty(
      fc.asyncProperty(scenario({ routing: 'journal', maxKills: 2 }), async ({ shape, work, plan }) => {
        const { stages, options } = buildPipeline(shape);
        const journal = asyncJournal(memoryJournal());
        const rec = await runScenario({ stages, pipeline: options, inputs: work, plan, journal, keyOf: (w) => w.key, idOf: (w) => w.id, taskIdOf });
        assertAll(rec);
        expect(journal.maxInFlight).toBeLessThanOrEqual(1);
      }),
      { numRuns: 300 },
    );
  }, 170_000);
});
