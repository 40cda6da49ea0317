// An LLM-style pipeline against a model server that rate-limits: the agent's rate limit keeps it under
// the provider's RPM, and a 429 with Retry-After holds the agent's inbox instead of burning retries.
import { agent, createSystem, type BatonEvent } from '../../system/index.js';
import { startModelServer } from './model-server.js';

export interface StormReport {
  readonly tasks: number;
  readonly completed: number;
  readonly deadLettered: number;
  /** Attempts charged to tasks (a 429 charges none). */
  readonly chargedAttempts: number;
  readonly calls: number;
  readonly refused: number;
  readonly holds: number;
  readonly seconds: number;
}

export async function runStorm(tasks = 300, options: { stormMs?: number } = {}): Promise<StormReport> {
  const server = await startModelServer({ stormMs: options.stormMs ?? 5_000, retryAfterS: 1, latencyMs: 20 });
  const system = createSystem({ logger: false });
  const events: BatonEvent[] = [];
  system.events.on((e) => events.push(e));
  const pipe = system.spawnPipeline<string, string>({
    name: 'summaries',
    stages: [
      agent({
        name: 'summarise',
        concurrency: 8,
        rateLimit: { perSecond: 100 }, // the provider's limit, kept on our side
        handle: async (doc: string) => {
          const res = await fetch(`${server.url}/v1/complete`, { method: 'POST', body: JSON.stringify({ prompt: doc }), headers: { 'content-type': 'application/json' } });
          // An error with the status and the headers: the default rules read 429 + Retry-After from it.
          if (!res.ok) throw Object.assign(new Error(`model server answered ${res.status}`), { status: res.status, headers: res.headers });
          return ((await res.json()) as { text: string }).text;
        },
      }),
    ],
  });
  const t0 = Date.now();
  const outcomes: { status: string; charged: number }[] = [];
  pipe.onOutcome((o) => outcomes.push({ status: o.status, charged: o.errors.filter((e) => e.charged).length }));
  await pipe.sendMany(Array.from({ length: tasks }, (_, i) => `document ${i}: ${'lorem ipsum '.repeat(20)}`));
  await pipe.drain();
  const seconds = (Date.now() - t0) / 1000;
  await system.shutdown();
  await server.close();
  return {
    tasks,
    completed: outcomes.filter((o) => o.status === 'completed').length,
    deadLettered: outcomes.filter((o) => o.status !== 'completed').length,
    chargedAttempts: outcomes.reduce((n, o) => n + o.charged, 0),
    calls: server.stats.calls,
    refused: server.stats.refused,
    holds: events.filter((e) => e.type === 'throttled').length,
    seconds,
  };
}
