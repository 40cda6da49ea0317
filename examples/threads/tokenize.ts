// The thread agent's module: Baton loads it in each worker thread (a function cannot cross into
// another thread). A CPU-bound handler: it "embeds" a document by hashing its words over and over,
// about 2 ms of synchronous work per document. Two documents in the batch misbehave the way real
// parsers do: one sends the tokenizer into an endless loop, one makes it hoard memory.

export interface Doc {
  readonly id: string;
  readonly text: string;
}

export interface Embedded {
  readonly id: string;
  readonly words: number;
  /** A 32-bit digest standing in for the embedding. */
  readonly digest: number;
}

/** Rounds of hashing per document: about 2 ms on this machine's cores. */
const ROUNDS = 600;

export function handle(doc: Doc): Embedded {
  if (doc.text.startsWith('LOOP')) for (;;) {} // a parser stuck in a loop: it never yields
  if (doc.text.startsWith('HOARD')) {
    const hoard: number[][] = [];
    for (;;) hoard.push(new Array(100_000).fill(1)); // until the worker's heap limit ends it
  }
  const words = doc.text.split(' ');
  let h = 2166136261;
  for (let r = 0; r < ROUNDS; r++) {
    for (const w of words) {
      for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619);
    }
  }
  return { id: doc.id, words: words.length, digest: h >>> 0 };
}
