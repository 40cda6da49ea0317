import { BatonError } from './errors.js';

/**
 * Refuses an options object with a key it does not know: a misspelt option (`retires` for `retry`)
 * would otherwise be ignored and its default used, silently. The error names the key, where it was
 * found and, when one is close (at most 2 edits, or a different case), the option meant.
 */
export function checkKeys(value: object, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const near = nearest(key, allowed);
    throw new BatonError(
      'ERR_INVALID_OPTION',
      `${path}: unknown option '${key}'${near === undefined ? '.' : `; did you mean '${near}'?`} Known options: ${allowed.join(', ')}.`,
      { option: `${path}.${key}`, ...(near === undefined ? {} : { suggestion: near }) },
    );
  }
}

/**
 * The allowed key closest to `key`: case-insensitive edit distance at most 2, or 3 for a key of 6 or
 * more letters that starts like the candidate ('retires' is 3 from 'retry'; 'colour' is no option's
 * typo). Ties: the first listed.
 */
function nearest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const k = key.toLowerCase();
  for (const candidate of allowed) {
    const c = candidate.toLowerCase();
    const limit = k.length >= 6 && c.slice(0, 3) === k.slice(0, 3) ? 3 : 2;
    const d = distance(k, c);
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions (so 'retires' is 2 from 'retry', 'timoutMs' 1 from 'timeoutMs'). */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
