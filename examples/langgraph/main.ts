// npx tsx examples/langgraph/main.ts: the supervised LangGraph node on a flaky model, in a few lines of output.
import { buildGraph, type Model } from './graph.js';

const documents = new Map([
  ['contract-1', 'The parties agree to the terms set out below.'],
  ['scan-7', 'POISON: an unreadable scan.'],
  ['brief-3', 'A brief in support of the motion to dismiss.'],
]);
let calls = 0;
let flaky = 0;
const model = (): Model => ({
  // Calls 2, 5, 8... fail (a flaky API); the poison document fails every time.
  summarise: async (text) => {
    calls++;
    if (text.startsWith('POISON')) throw new Error('model API error: unreadable input');
    if (calls % 3 === 2) throw new Error(`model API error (flaky, ${++flaky})`);
    return text.slice(0, 24) + '...';
  },
});
const store = new Map<string, string>();
const dead: string[] = [];
const graph = buildGraph({ documents, model, store, supervision: { onDeadLetter: (d) => dead.push(`${d.input.docId} (${d.attempts} attempts: ${d.errors.at(-1)!.error.message})`) } });
for (const docId of documents.keys()) {
  const out = await graph.invoke({ docId }, { configurable: { thread_id: docId } });
  process.stdout.write(`${docId}: ${out.deadLettered ? 'dead-lettered, graph finished' : `stored "${out.summary}"`}\n`);
}
process.stdout.write(`model calls: ${calls} (${flaky} flaky failure(s) retried); stored: ${store.size}; dead letters: ${dead.join('; ') || 'none'}\n`);
