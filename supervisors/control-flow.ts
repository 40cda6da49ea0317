/**
 * Errors that are not failures: a framework throws them to pause, jump or drain a run, or they
 * say the caller gave up. A supervisor must let them through untouched: not retried, not counted,
 * no breaker effect.
 *
 * LangGraph.js matches its own control-flow errors by name, not by class (a graph may load two
 * copies of the package): `isGraphInterrupt` compares `name` with GraphInterrupt / NodeInterrupt,
 * and `isGraphBubbleUp` checks a truthy `is_bubble_up` (set by GraphInterrupt, NodeInterrupt,
 * ParentCommand and friends). We do the same, without depending on LangGraph.
 */
const CONTROL_FLOW_NAMES = new Set(['GraphInterrupt', 'NodeInterrupt', 'ParentCommand', 'GraphDrained', 'GraphBubbleUp']);

export function isControlFlow(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { name?: unknown; is_bubble_up?: unknown };
  return e.is_bubble_up === true || (typeof e.name === 'string' && CONTROL_FLOW_NAMES.has(e.name));
}

/** An abort: the caller's signal fired, or the error says so by name (AbortError, as fetch and timers throw). */
export function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted === true) return true;
  return err !== null && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError';
}
