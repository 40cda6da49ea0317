import { Command, GraphDrained, GraphInterrupt, isGraphBubbleUp, NodeInterrupt, ParentCommand } from '@langchain/langgraph';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, simulatedClock, supervise, type SimulatedClock, type SupervisedDeadLetter } from 'baton-actors';
import { buildGraph, type Doc, type Model } from './graph.js';

const documents = new Map([
  ['d1', 'The parties agree to the terms.'],
  ['d2', 'POISON: a scanned page the model chokes on.'],
  ['d3', 'A brief in support of the motion.'],
]);

/** A scripted model: `fail(text, call)` decides whether its nth call throws. */
function scripted(fail: (text: string, call: number) => boolean) {
  let calls = 0;
  let clients = 0;
  const model = (): Model => {
    clients++;
    return {
      summarise: async (text) => {
        calls++;
        if (fail(text, calls)) throw new Error(`model error on call ${calls}`);
        return text.slice(0, 12);
      },
    };
  };
  return { model, calls: () => calls, clients: () => clients };
}

/** Moves simulated time in small steps until `p` settles (retries wait on this clock). */
async function driven<T>(clock: SimulatedClock, p: Promise<T>): Promise<T> {
  let done = false;
  void p.finally(() => (done = true));
  for (let i = 0; i < 1_000 && !done; i++) await clock.advance(5);
  return p;
}

const run = (graph: ReturnType<typeof buildGraph>, docId: string, thread = docId) => graph.invoke({ docId }, { configurable: { thread_id: thread } });

describe('a LangGraph graph with a supervised node', () => {
  it('retries transient model failures, with a fresh client each time, and finishes the run', async () => {
    const m = scripted((_t, call) => call <= 2);
    const store = new Map<string, string>();
    const out = await run(buildGraph({ documents, model: m.model, store }), 'd1');
    expect(out).toMatchObject({ docId: 'd1', summary: 'The parties ', stored: true });
    expect(m.calls()).toBe(3);
    expect(m.clients()).toBe(3);
    expect(store.get('d1')).toBe('The parties ');
  });

  it('dead-letters a poison input while the graph finishes, and the next input still runs', async () => {
    const m = scripted((text) => text.startsWith('POISON'));
    const store = new Map<string, string>();
    const dead: SupervisedDeadLetter<Doc>[] = [];
    const graph = buildGraph({ documents, model: m.model, store, supervision: { onDeadLetter: (d) => dead.push(d) } });
    const out = await run(graph, 'd2');
    expect(out).toMatchObject({ docId: 'd2', deadLettered: true });
    expect(out.stored).toBeUndefined();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ name: 'summarise', attempts: 3, input: { docId: 'd2' } });
    await expect(run(graph, 'd3')).resolves.toMatchObject({ stored: true });
    expect([...store.keys()]).toEqual(['d3']);
  });

  it('lets interrupt() pause the run untouched and resumes it with Command({ resume })', async () => {
    const m = scripted(() => false);
    const store = new Map<string, string>();
    const graph = buildGraph({ documents, model: m.model, store, needsApproval: (d) => d.docId === 'd3' });
    const paused = await run(graph, 'd3');
    expect(paused.stored).toBeUndefined();
    const snapshot = await graph.getState({ configurable: { thread_id: 'd3' } });
    expect(snapshot.next).toEqual(['summarise']);
    expect(snapshot.tasks[0]!.interrupts[0]!.value).toMatchObject({ docId: 'd3' });
    expect(m.calls(), 'the interrupt was not retried').toBe(1);
    expect(m.clients(), 'nor taken for a failure: no fresh client').toBe(1);
    const done = await graph.invoke(new Command({ resume: 'approve' }), { configurable: { thread_id: 'd3' } });
    expect(done).toMatchObject({ stored: true, summary: 'A brief in s' });
    expect(m.calls(), 'LangGraph re-runs the node on resume; interrupt() then returns the answer').toBe(2);
  });

  it("passes LangGraph's own control-flow errors through unchanged, whichever class they are", async () => {
    const signals = [new GraphInterrupt([]), new NodeInterrupt('needs a human'), new ParentCommand(new Command({ goto: 'store' })), new GraphDrained('shutdown')];
    for (const signal of signals) {
      expect(isGraphBubbleUp(signal), `${signal.name} is control flow to LangGraph`).toBe(true);
      let calls = 0;
      const node = supervise(
        async () => {
          calls++;
          throw signal;
        },
        { logger: false, breaker: { threshold: 1 } },
      );
      await expect(node({})).rejects.toBe(signal);
      await expect(node({}), 'a threshold of 1 did not open').rejects.toBe(signal);
      expect(calls, signal.name).toBe(2);
    }
  });

  it('stops runs at their checkpoint during an outage (CircuitOpenError) and resumes them once it is over', async () => {
    let down = true;
    const m = scripted(() => down);
    const store = new Map<string, string>();
    // Simulated time for the supervisor, so the breaker's probe time is exact on a loaded machine.
    const clock = simulatedClock();
    let fetches = 0;
    const counted = new Map(documents);
    const get = counted.get.bind(counted);
    counted.get = (id: string) => (fetches++, get(id));
    const graph = buildGraph({ documents: counted, model: m.model, store, supervision: { clock, breaker: { threshold: 2, backoff: { minMs: 1_000, maxMs: 1_000, jitter: 0 } }, retry: { maxAttempts: 5, backoff: { minMs: 10, maxMs: 10, jitter: 0 } } } });
    const first = await driven(clock, Promise.allSettled([run(graph, 'd1'), run(graph, 'd3')]));
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of first) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CircuitOpenError);
    const held = await graph.getState({ configurable: { thread_id: 'd1' } });
    expect(held.next, 'the checkpoint holds the run before the failed node').toEqual(['summarise']);
    expect(store.size).toBe(0);
    const modelCalls = m.calls();
    await expect(run(graph, 'd2', 'later'), 'a new run meets the open breaker too').rejects.toBeInstanceOf(CircuitOpenError);
    expect(m.calls(), 'without calling the model').toBe(modelCalls);

    down = false;
    await clock.advance(1_000); // the breaker's probe time
    const resumed = await graph.invoke(null, { configurable: { thread_id: 'd1' } });
    expect(resumed).toMatchObject({ stored: true, docId: 'd1', text: documents.get('d1') });
    expect([...store.keys()]).toEqual(['d1']);
    expect(fetches, 'fetch ran once per run (d1, d3, later), not again on resume: the run went on from its checkpoint').toBe(3);
  });
});
