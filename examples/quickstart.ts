import { createSystem, agent } from '../system/index.js';

const system = createSystem({ logger: false });
const pipe = system.spawnPipeline<string, { words: number }>({
  name: 'docs',
  stages: [
    agent({ name: 'parse', handle: (doc: string) => { if (doc.startsWith('%BAD')) throw new Error('corrupt'); return doc.trim(); } }),
    agent({ name: 'count', handle: async (text: string) => ({ words: text.split(/\s+/).length }) }),
  ],
  defaults: { retry: { maxAttempts: 3, backoff: { minMs: 10 } } },
});
pipe.onOutcome((o) => console.log(o.id, o.status, o.status === 'completed' ? o.output : o.error?.message));
for (const doc of ['a contract between two parties', '%BAD scan', 'a short brief']) await pipe.send(doc);
await pipe.drain();
await system.shutdown();
