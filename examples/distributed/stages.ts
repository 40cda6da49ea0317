// The legal pipeline's work, as three stages that any process can host: ingest (parse the PDF),
// analyse (classify, extract the fields), validate. Every process that joins the pipeline builds the
// same list; which stages it runs is its `host`.
import { agent } from '../../system/index.js';
import { classifyText, extractFields, validateFields } from '../legal-pipeline/legal.js';
import { parsePdf } from '../legal-pipeline/pdf-sim.js';

export function legalStages() {
  return [
    agent({
      name: 'ingest',
      retry: { maxAttempts: 3 },
      breaker: false, // parsing bytes depends on nothing that can be down: every failure is the document's
      handle: (raw: string, ctx) => {
        const pdf = parsePdf(raw);
        if (pdf.id !== ctx.taskId) throw new Error(`the document says it is ${pdf.id}, but it was sent as ${ctx.taskId}`);
        return { id: pdf.id, text: pdf.text };
      },
    }),
    agent({
      name: 'analyse',
      concurrency: 8,
      // A model call: 2 ms of latency stands in for it.
      handle: async (doc: { id: string; text: string }) => {
        await new Promise((r) => setTimeout(r, 2));
        const type = classifyText(doc.text);
        return { id: doc.id, type, fields: extractFields(type, doc.text) };
      },
    }),
    agent({
      name: 'validate',
      handle: (doc: { id: string; type: string; fields: ReturnType<typeof extractFields> }) => ({ id: doc.id, type: doc.type, fields: validateFields(doc.fields) }),
    }),
  ];
}
