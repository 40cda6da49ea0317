import { Annotation, END, interrupt, MemorySaver, START, StateGraph, type LangGraphRunnableConfig } from '@langchain/langgraph';
import { supervise, type SuperviseOptions } from 'baton-actors';

/**
 * A three-node LangGraph.js graph (fetch -> summarise -> store) whose middle node, the one that
 * calls a model, is supervised by Baton: retries with backoff, a fresh client after a failure, a
 * timeout, the poison/outage breaker and dead letters. The graph, its edges and its checkpoints
 * stay LangGraph's.
 */
export const DocState = Annotation.Root({
  docId: Annotation<string>(),
  text: Annotation<string>(),
  summary: Annotation<string>(),
  stored: Annotation<boolean>(),
  deadLettered: Annotation<boolean>(),
});
export type Doc = typeof DocState.State;

/** What the summarise node calls: a model client. Tests script its failures. */
export interface Model {
  summarise(text: string, signal: AbortSignal): Promise<string>;
}

export interface GraphDeps {
  readonly documents: ReadonlyMap<string, string>;
  /** Builds a model client; called again after a failure (fresh connection, fresh state). */
  readonly model: () => Model;
  readonly store: Map<string, string>;
  /** Documents whose summary a human must approve: the node pauses with interrupt(). */
  readonly needsApproval?: (doc: Doc) => boolean;
  readonly supervision?: SuperviseOptions<Doc, Partial<Doc>>;
}

export function buildGraph(deps: GraphDeps) {
  const summarise = supervise<Doc, Partial<Doc>, LangGraphRunnableConfig>(
    {
      create: () => {
        const model = deps.model();
        return async (doc, ctx) => {
          const summary = await model.summarise(doc.text, ctx.signal);
          // interrupt() throws LangGraph's GraphInterrupt the first time: Baton lets it through untouched.
          if (deps.needsApproval?.(doc) && interrupt({ docId: doc.docId, summary }) !== 'approve') return { summary: '(rejected)' };
          return { summary };
        };
      },
    },
    {
      name: 'summarise',
      retry: { maxAttempts: 3, backoff: { minMs: 5, maxMs: 50 } },
      breaker: { threshold: 3, backoff: { minMs: 50, maxMs: 200 } },
      timeoutMs: 2_000,
      // A poison document is dead-lettered and the graph goes on to its end with a marker (a state
      // update here; a Command works too).
      deadLetterValue: () => ({ summary: '', deadLettered: true }),
      logger: false,
      ...deps.supervision,
    },
  );

  return new StateGraph(DocState)
    .addNode('fetch', (doc: Doc) => ({ text: deps.documents.get(doc.docId) ?? '' }))
    .addNode('summarise', (doc: Doc, config) => summarise(doc, config)) // the node's own signature: (state, config)
    .addNode('store', (doc: Doc) => {
      deps.store.set(doc.docId, doc.summary);
      return { stored: true };
    })
    .addEdge(START, 'fetch')
    .addEdge('fetch', 'summarise')
    .addConditionalEdges('summarise', (doc: Doc) => (doc.deadLettered ? END : 'store'), ['store', END])
    .addEdge('store', END)
    .compile({ checkpointer: new MemorySaver() });
}
