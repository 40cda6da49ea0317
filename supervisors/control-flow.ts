/**
 * Errors that are not failures: a framework throws them to pause, jump or drain a run, or they
 * say the caller gave up. A supervisor lets them through untouched: not retried, not counted, no
 * breaker effect. Retrying a LangGraph interrupt would re-run the node and ask the human twice;
 * counting five of them would open the breaker on a healthy node.
 *
 * LangGraph.js matches its own control flow by name or flag, never by class, so a graph that
 * loads two copies of the package still works (langchain-ai/langgraphjs, libs/langgraph/src/errors.ts,
 * as shipped in @langchain/langgraph 1.7.3): `isGraphInterrupt` compares `e.name` with
 * GraphInterrupt and NodeInterrupt, `isParentCommand` and `isGraphDrained` compare `e.name`, and
 * `isGraphBubbleUp` checks `e.is_bubble_up === true`, a getter on the GraphBubbleUp base class that
 * GraphInterrupt, NodeInterrupt, ParentCommand and GraphDrained extend. We match the same names, and
 * any truthy `is_bubble_up` (a superset of LangGraph's strict check), without importing LangGraph.
 */
const CONTROL_FLOW_NAMES: ReadonlySet<string> = new Set(['GraphInterrupt', 'NodeInterrupt', 'ParentCommand', 'GraphDrained', 'GraphBubbleUp']);

/** Whether an error is a framework's control flow (LangGraph's interrupts and commands, anything with `is_bubble_up`), which `supervise` passes through untouched: not retried, not counted. */
export function isControlFlow(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { name?: unknown; is_bubble_up?: unknown };
  return Boolean(e.is_bubble_up) || (typeof e.name === 'string' && CONTROL_FLOW_NAMES.has(e.name));
}

/**
 * An abort: the caller's signal fired, or the error says so by name (`AbortError`, as fetch and
 * `AbortSignal.abort()` throw). A timeout of our own is not an abort: it arrives as ERR_TIMEOUT
 * (attempt.ts) and is retried.
 */
export function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted === true) return true;
  return err !== null && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError';
}
