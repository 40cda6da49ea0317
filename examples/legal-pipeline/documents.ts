import { seededRandom } from '../../system/index.js';
import { fnv1a } from './hash.js';
import { DOC_TYPES, legalText, type DocType } from './legal-text.js';
import { encodePdf, PDF_HEADER } from './pdf-sim.js';

/** How a corrupt document is broken. Each one fails parsing every time. */
export type Corruption = 'header' | 'truncated' | 'checksum';
const CORRUPTIONS: readonly Corruption[] = ['header', 'truncated', 'checksum'];

export const DEFAULT_CORRUPT_RATE = 0.032;

export interface SyntheticDocument {
  readonly index: number;
  readonly id: string;
  /** What the pipeline receives. */
  readonly pdf: string;
  /** Ground truth, for checking the pipeline's answers. */
  readonly type: DocType;
  readonly corruption: Corruption | null;
}

export function docId(index: number): string {
  return `doc-${String(index).padStart(6, '0')}`;
}

/** The inverse of `docId`. */
export function docIndex(id: string): number {
  return Number(id.slice(4));
}

/**
 * Document `index` of the batch `seed`: the same every time, whatever else was generated before
 * it, so a batch of 50,000 never has to sit in memory.
 */
export function makeDocument(seed: number, index: number, corruptRate = DEFAULT_CORRUPT_RATE): SyntheticDocument {
  const rng = seededRandom(fnv1a(`${seed}:${index}`));
  const corrupt = rng() < corruptRate;
  const type = DOC_TYPES[Math.floor(rng() * DOC_TYPES.length)]!;
  const id = docId(index);
  const pdf = encodePdf(id, legalText(type, rng));
  if (!corrupt) return { index, id, pdf, type, corruption: null };
  const corruption = CORRUPTIONS[Math.floor(rng() * CORRUPTIONS.length)]!;
  return { index, id, pdf: damage(pdf, corruption, rng), type, corruption };
}

function damage(pdf: string, how: Corruption, rng: () => number): string {
  switch (how) {
    case 'header':
      return '%PDF\u0000SIM' + pdf.slice(PDF_HEADER.length - 4);
    case 'truncated':
      return pdf.slice(0, Math.floor(pdf.length * (0.3 + 0.6 * rng())));
    case 'checksum': {
      // Flip one letter inside the text stream; the length stays right, the checksum does not.
      const start = pdf.indexOf('stream\n') + 'stream\n'.length;
      const end = pdf.indexOf('\nendstream');
      let at = start + Math.floor(rng() * (end - start));
      while (!/[a-z]/i.test(pdf[at]!)) at = at + 1 < end ? at + 1 : start;
      const flipped = pdf[at] === 'x' ? 'y' : 'x';
      return pdf.slice(0, at) + flipped + pdf.slice(at + 1);
    }
  }
}

/** The batch, generated lazily in order. */
export function* documents(seed: number, count: number, corruptRate = DEFAULT_CORRUPT_RATE): Generator<SyntheticDocument> {
  for (let i = 0; i < count; i++) yield makeDocument(seed, i, corruptRate);
}
