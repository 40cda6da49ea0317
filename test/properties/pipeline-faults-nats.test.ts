import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { natsJetStream } from '../../system/index.js';
import { arbitraries, assertAll, buildPipeline, checkProperty, runScenario, type WorkItem } from '../../testkit/index.js';
import { natsMissing, startNatsServer, warnNatsMissing, type NatsServer } from '../../testkit/nats-server.js';

warnNatsMissing();

// The testkit's fault-plan property over the NATS JetStream journal (a real nats-server, a fresh
// bucket per run): every invariant holds with commits that are real round trips, through generated
// faults and kills. Fewer runs than on memory: each one talks to the server.
const taskIdOf = (x: unknown) => (x as WorkItem).id;

describe.skipIf(natsMissing !== '')('pipelines under generated fault plans on the NATS journal', () => {
  let server: NatsServer;
  let bucket = 0;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('keep every invariant when killed at generated moments', async () => {
    await checkProperty(
      fc.asyncProperty(
        fc.tuple(arbitraries.pipelineShape({ routing: 'journal' }), arbitraries.workload()).chain(([shape, work]) =>
          arbitraries.faultPlan({ stages: shape.stages.map((s) => s.name), taskIds: work.map((w) => w.id), calls: work.length * 3, maxKills: 2 }).map((plan) => ({ shape, work, plan })),
        ),
        async ({ shape, work, plan }) => {
          const { stages, options } = buildPipeline(shape);
          const journal = await natsJetStream({ servers: server.url, bucket: `prop${bucket++}` });
          try {
            const rec = await runScenario({ stages, pipeline: options, inputs: work, plan, journal, keyOf: (w) => w.key, idOf: (w) => w.id, taskIdOf });
            assertAll(rec);
          } finally {
            await journal.close();
          }
        },
      ),
      { numRuns: 100 },
    );
  }, 170_000);
});
