import type { Outcome, PipelineStats } from '../../src/index.js';
import type { StoredDoc } from './agents.js';
import { docId, docIndex, type SyntheticDocument } from './documents.js';
import { DOC_TYPES } from './legal-text.js';
import { STAGES, type CallLedger } from './ledger.js';

export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

const EXAMPLES = 5;

/**
 * Holds the batch's ground truth and checks every outcome against it as it arrives: exactly one
 * outcome per document, dead letters only for corrupt documents, the right type for the rest,
 * and handler calls that match the failures recorded (so no stage ever re-ran an upstream one).
 */
export class Audit {
  private readonly corrupt: Uint8Array;
  private readonly type: Uint8Array;
  private readonly outcomes: Uint8Array;
  duplicates = 0;
  completed = 0;
  /** The batch crossed a crash: handler calls of earlier processes are not in the ledger. */
  resumed = false;
  deadLettered = 0;
  /** Dead letters of healthy documents, and corrupt documents that completed. */
  private readonly wrongFate: string[] = [];
  private wrongFateCount = 0;
  private readonly misfiled: string[] = [];
  private misfiledCount = 0;
  private readonly replays: string[] = [];
  private replayCount = 0;

  constructor(
    readonly documents: number,
    private readonly ledger: CallLedger,
  ) {
    this.corrupt = new Uint8Array(documents);
    this.type = new Uint8Array(documents);
    this.outcomes = new Uint8Array(documents);
  }

  /** Records a document's truth before it is sent. */
  expect(doc: SyntheticDocument): void {
    this.corrupt[doc.index] = doc.corruption === null ? 0 : 1;
    this.type[doc.index] = DOC_TYPES.indexOf(doc.type);
  }

  hasOutcome(index: number): boolean {
    return this.outcomes[index]! > 0;
  }

  /** An outcome recorded by an earlier (crashed) process, read back from the journal. */
  observeEarlier(o: Outcome<StoredDoc> | undefined): void {
    if (o !== undefined) this.observe(o, false);
  }

  observe(o: Outcome<StoredDoc>, audited = true): void {
    const i = docIndex(o.id);
    if (this.outcomes[i]! > 0) this.duplicates++;
    this.outcomes[i] = this.outcomes[i]! + 1;
    const corrupt = this.corrupt[i] === 1;
    if (o.status === 'completed') {
      this.completed++;
      if (corrupt) note(this.wrongFate, ++this.wrongFateCount, `${o.id} is corrupt but completed`);
      else if (o.output?.type !== DOC_TYPES[this.type[i]!]) note(this.misfiled, ++this.misfiledCount, `${o.id} stored as ${o.output?.type}, is ${DOC_TYPES[this.type[i]!]}`);
    } else {
      this.deadLettered++;
      if (!corrupt) note(this.wrongFate, ++this.wrongFateCount, `${o.id} is healthy but was dead-lettered at ${o.stage}: ${o.error?.message}`);
    }
    if (audited && !this.resumed) this.auditCalls(i, o);
  }

  /** Every stage the task reached ran once more than it failed there; stages it never reached, never. */
  private auditCalls(i: number, o: Outcome<StoredDoc>): void {
    const last = STAGES.indexOf(o.stage as (typeof STAGES)[number]);
    STAGES.forEach((stage, s) => {
      let failures = 0;
      for (const e of o.errors) if (e.stage === stage) failures++;
      const expected = s < last ? failures + 1 : s > last ? 0 : o.status === 'completed' ? failures + 1 : failures;
      const calls = this.ledger.count(stage, i);
      if (calls !== expected) note(this.replays, ++this.replayCount, `${o.id}: ${stage} ran ${calls}x, expected ${expected} (${failures} failures there, ended ${o.status} at ${o.stage})`);
    });
  }

  checks(sent: number, stats: PipelineStats, storedRows: number): Check[] {
    let missing = 0;
    const missingIds: string[] = [];
    for (let i = 0; i < sent; i++) if (this.outcomes[i] === 0) note(missingIds, ++missing, docId(i));
    let corrupt = 0;
    let healthyReplays = 0;
    for (let i = 0; i < sent; i++) {
      if (this.corrupt[i] === 1) corrupt++;
      else if (!this.resumed && this.ledger.count('ingest', i) !== 1) healthyReplays++;
    }
    const ended = this.completed + this.deadLettered;
    return [
      {
        name: 'completed + dead-lettered = sent, one outcome each',
        pass: ended === sent && missing === 0 && this.duplicates === 0 && (this.resumed || stats.accepted === sent) && stats.pending === 0,
        detail: `${this.completed} + ${this.deadLettered} = ${ended} of ${sent} sent; ${missing} without an outcome${examples(missingIds)}; ${this.duplicates} duplicate outcomes; pipeline says accepted ${stats.accepted}, pending ${stats.pending}`,
      },
      {
        name: 'dead letters are exactly the corrupt documents',
        pass: this.wrongFateCount === 0 && this.deadLettered === corrupt && missing === 0,
        detail: `${this.deadLettered} dead-lettered, ${corrupt} corrupt, ${this.wrongFateCount} mismatches${examples(this.wrongFate)}`,
      },
      {
        name: 'no upstream replay (each stage ran once per document plus its own failures)',
        pass: this.replayCount === 0 && healthyReplays === 0,
        detail: this.resumed
          ? 'not checked: this batch crossed a crash, and runs in flight at the kill may run again (at-least-once); the kill tests check it'
          : `ingest ran exactly once for ${sent - corrupt - healthyReplays} of ${sent - corrupt} healthy documents; ${this.replayCount} call-count mismatches${examples(this.replays)}`,
      },
      {
        name: 'every completed document is stored once, with its true type',
        pass: storedRows === this.completed && this.misfiledCount === 0,
        detail: `${storedRows} rows for ${this.completed} completed; ${this.misfiledCount} misfiled${examples(this.misfiled)}`,
      },
    ];
  }
}

function note(list: string[], count: number, text: string): void {
  if (count <= EXAMPLES) list.push(text);
}

function examples(list: readonly string[]): string {
  return list.length === 0 ? '' : ` (e.g. ${list.join('; ')})`;
}
