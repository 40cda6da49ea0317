import { agent, type Agent } from '../../system/index.js';
import type { FaultPlan } from './faults.js';
import { InjectedFault } from './faults.js';
import { classifyText, extractFields, validateFields, type Fields, type ValidFields } from './legal.js';
import { DOC_TYPES, type DocType } from './legal-text.js';
import type { CallLedger } from './ledger.js';
import { CorruptDocumentError, parsePdf } from './pdf-sim.js';
import type { ResultStore } from './store.js';

/** What the five agents share: the fault plan, the result store and the call ledger. */
export interface AgentDeps {
  readonly faults: FaultPlan;
  readonly store: ResultStore;
  readonly ledger: CallLedger;
}

export interface IngestedDoc {
  readonly id: string;
  /** The first line of the text. */
  readonly title: string;
  readonly text: string;
}
export interface ClassifiedDoc extends IngestedDoc {
  readonly type: DocType;
}
export interface ExtractedDoc {
  readonly id: string;
  readonly fields: Fields;
}
export interface ValidDoc {
  readonly id: string;
  readonly fields: ValidFields;
}
/** The pipeline's output: what was stored, in brief. */
export interface StoredDoc {
  readonly id: string;
  readonly type: DocType;
}

/** The classifier's worker state: a memo of title -> type, so a known title skips the scoring. */
interface ClassifierState {
  calls: number;
  readonly memo: Map<string, DocType>;
}

/** ingest -> classify -> extract -> validate -> store, each with the policy its work calls for. */
export function legalAgents({ faults, store, ledger }: AgentDeps): Agent[] {
  const ingest = agent<string, IngestedDoc>({
    name: 'ingest',
    // A corrupt PDF fails every time: three tries, then it is quarantined as a dead letter.
    retry: { maxAttempts: 3 },
    // Parsing bytes in memory depends on nothing that can be down, so every failure here is the
    // document's. Without a breaker a batch of mostly corrupt PDFs is quarantined at full speed
    // instead of being held as a suspected outage (threshold 5 opens it at --corrupt-rate 0.5).
    breaker: false,
    handle: (raw, ctx) => {
      ledger.record('ingest', ctx.taskId);
      const pdf = parsePdf(raw);
      if (pdf.id !== ctx.taskId) throw new CorruptDocumentError('ERR_PDF_STRUCTURE', `the document says it is ${pdf.id}, but it was sent as ${ctx.taskId}`);
      const eol = pdf.text.indexOf('\n');
      return { id: pdf.id, title: eol < 0 ? pdf.text : pdf.text.slice(0, eol), text: pdf.text };
    },
  });

  const classify = agent<IngestedDoc, ClassifiedDoc, ClassifierState>({
    name: 'classify',
    // Crashes are rare and unrelated to each other: restarts are cheap, escalate only if init keeps failing.
    restart: { maxRestarts: 10, withinMs: 10_000 },
    init: () => ({ calls: 0, memo: new Map() }),
    handle: (doc, ctx) => {
      ledger.record('classify', ctx.taskId);
      const state = ctx.state;
      state.calls++;
      if (faults.strikes('crash', ctx.taskId)) {
        // The worker dies mid-update and leaves its memo wrong. Baton restarts it from init, so
        // the bad entries die with it; with keepState they would misfile every later document.
        for (const [title, type] of state.memo) state.memo.set(title, wrongType(type));
        state.memo.set(doc.title, wrongType(classifyText(doc.text)));
        state.calls = Number.NaN;
        throw new InjectedFault('ERR_WORKER_CRASHED', `classifier worker crashed on ${ctx.taskId} after corrupting its memo (simulated)`);
      }
      let type = state.memo.get(doc.title);
      if (type === undefined) {
        type = classifyText(doc.text);
        state.memo.set(doc.title, type);
      }
      return { ...doc, type };
    },
  });

  const extract = agent<ClassifiedDoc, ExtractedDoc>({
    name: 'extract',
    // A flaky model: retry soon, a few times.
    retry: { maxAttempts: 4 },
    handle: (doc, ctx) => {
      ledger.record('extract', ctx.taskId);
      if (faults.strikes('transient', ctx.taskId)) throw new InjectedFault('ERR_MODEL_UNAVAILABLE', `extraction model returned 503 for ${ctx.taskId} (simulated)`);
      return { id: doc.id, fields: extractFields(doc.type, doc.text) };
    },
  });

  const validate = agent<ExtractedDoc, ValidDoc>({
    name: 'validate',
    // A hung call is cut off at 500 ms and retried; 16 at a time so one hang does not stall the stage.
    timeoutMs: 500,
    concurrency: 16,
    handle: (doc, ctx) => {
      ledger.record('validate', ctx.taskId);
      if (faults.strikes('hang', ctx.taskId)) return hang(ctx.signal);
      return { id: doc.id, fields: validateFields(doc.fields) };
    },
  });

  const save = agent<ValidDoc, StoredDoc>({
    name: 'store',
    // The database can be down for seconds. With a backlog, 5 fresh failures open the breaker and
    // the inbox is held; with too few tasks to open it, patient retries (7 s in all) outlast the outage.
    retry: { maxAttempts: 8, backoff: { minMs: 100, maxMs: 2_000 } },
    handle: (doc, ctx) => {
      ledger.record('store', ctx.taskId);
      const f = doc.fields;
      store.put(doc.id, { type: f.type, parties: f.parties, dates: f.dates, amounts: f.amounts, clauses: f.clauses.length });
      return { id: doc.id, type: f.type };
    },
  });

  return [ingest, classify, extract, validate, save];
}

function wrongType(type: DocType): DocType {
  return DOC_TYPES[(DOC_TYPES.indexOf(type) + 1) % DOC_TYPES.length]!;
}

/** A call that never answers; only the stage's timeout (through `signal`) ends it. */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}
