import { docIndex } from './documents.js';

export const STAGES = ['ingest', 'classify', 'extract', 'validate', 'store'] as const;
export type StageName = (typeof STAGES)[number];

/**
 * How many times each stage's handler ran for each document: the evidence for "no upstream
 * replay". One byte per stage per document (a handler running 255 times is saturated, not wrapped).
 */
export class CallLedger {
  private readonly calls: Record<StageName, Uint8Array>;

  constructor(readonly documents: number) {
    this.calls = Object.fromEntries(STAGES.map((s) => [s, new Uint8Array(documents)])) as Record<StageName, Uint8Array>;
  }

  record(stage: StageName, id: string): void {
    const a = this.calls[stage];
    const i = docIndex(id);
    if (a[i]! < 255) a[i] = a[i]! + 1;
  }

  count(stage: StageName, index: number): number {
    return this.calls[stage][index] ?? 0;
  }

  total(stage: StageName): number {
    let n = 0;
    for (const c of this.calls[stage]) n += c;
    return n;
  }
}
