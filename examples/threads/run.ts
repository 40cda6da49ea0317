import { agent, createSystem, type Agent, type Outcome } from '../../system/index.js';
import { handle, type Doc, type Embedded } from './tokenize.js';

export interface ThreadsRun {
  readonly threads: number;
  readonly runaways: boolean;
  readonly docs: number;
  readonly completed: number;
  readonly deadLettered: { readonly id: string; readonly code: string }[];
  readonly seconds: number;
  readonly docsPerSec: number;
  /** Outputs that differ from the same handler run in this thread (must be 0). */
  readonly wrong: number;
}

/** `n` documents of about 300 words; with `runaways`, doc-7 loops forever and doc-11 hoards memory. */
export function makeDocs(n: number, runaways: boolean): Doc[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `doc-${i}`;
    if (runaways && i === 7) return { id, text: 'LOOP forever' };
    if (runaways && i === 11) return { id, text: 'HOARD memory' };
    const words = Array.from({ length: 300 }, (_, j) => `w${(i * 31 + j * 7) % 997}`);
    return { id, text: words.join(' ') };
  });
}

/**
 * Runs `docs` documents through tokenize -> index. threads 0: tokenize runs in the pipeline's own
 * thread (a runaway there would hang the process: none may be sent); threads >= 1: in that many
 * worker threads, each with a 64 MB heap and a 1 s timeout that terminates a stuck worker; with
 * `runaways`, doc-7 loops forever and doc-11 hoards memory.
 */
export async function runThreads(docs: number, threads: number, runaways = false): Promise<ThreadsRun> {
  if (threads === 0 && runaways) throw new Error('runaways in the pipeline\'s own thread would hang this process: give them threads');
  const system = createSystem({ logger: false });
  const tokenize: Agent<Doc, Embedded> =
    threads === 0
      ? agent<Doc, Embedded>({ name: 'tokenize', handle: (doc) => handle(doc) })
      : agent<Doc, Embedded>({
          name: 'tokenize',
          module: new URL('./tokenize.ts', import.meta.url),
          threads,
          resourceLimits: { maxOldGenerationSizeMb: 64 },
          timeoutMs: 1_000,
          // A runaway fails every time: two tries, then it is a dead letter. No breaker: a failure
          // here is the document's, never an outage of something the agent depends on.
          retry: { maxAttempts: 2, backoff: { minMs: 10, maxMs: 10, jitter: 0 } },
          breaker: false,
        });
  const index = agent<Embedded, Embedded>({ name: 'index', handle: (e) => e });
  const pipe = system.spawnPipeline<Doc, Embedded>({ name: 'embed', stages: [tokenize, index] });
  const outcomes: Outcome<Embedded>[] = [];
  pipe.onOutcome((o) => outcomes.push(o));
  const batch = makeDocs(docs, runaways);
  await pipe.send(batch[0]!, { id: batch[0]!.id }); // the workers have loaded once this is done
  await pipe.drain();
  const t0 = performance.now();
  for (const doc of batch.slice(1)) await pipe.send(doc, { id: doc.id });
  await pipe.drain();
  const seconds = (performance.now() - t0) / 1000;
  await system.shutdown();
  const byId = new Map(batch.map((d) => [d.id, d]));
  let wrong = 0;
  for (const o of outcomes) if (o.status === 'completed' && o.output.digest !== handle(byId.get(o.id)!).digest) wrong++;
  return {
    threads,
    runaways,
    docs,
    completed: outcomes.filter((o) => o.status === 'completed').length,
    deadLettered: outcomes.flatMap((o) => (o.status === 'dead-lettered' ? [{ id: o.id, code: o.error.code ?? '' }] : [])),
    seconds,
    docsPerSec: (docs - 1) / seconds,
    wrong,
  };
}
