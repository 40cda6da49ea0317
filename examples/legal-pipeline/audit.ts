import type { Outcome, PipelineStats } from '../../system/index.js';
import type { StoredDoc } from './agents.js';
import type { JournalAtStart } from './batch.js';
import { docId, docIndex, type SyntheticDocument } from './documents.js';
import { DOC_TYPES } from './legal-text.js';
import { STAGES, type CallLedger } from './ledger.js';

export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

/** What the run hands the audit at the end. */
export interface AuditInput {
  readonly sent: number;
  /** Sends answered 'duplicate' (the journal already held the document). */
  readonly duplicateSends: number;
  readonly stats: PipelineStats;
  readonly store: { readonly count: number; readonly ids: Iterable<string>; readonly repeated: number };
  /** Durable runs: the journal's own records at the end. */
  readonly journal?: { readonly pending: number; readonly completed: number; readonly dead: number; readonly deadIds: readonly string[] };
}

const EXAMPLES = 5;
const COMPLETED = 1;
const DEAD = 2;
/** origin: finished by an earlier process, read back from the journal. */
const EARLIER = 1;

/** Counts findings and keeps the first few as examples. */
class Notes {
  readonly list: string[] = [];
  count = 0;
  add(text: string): void {
    if (++this.count <= EXAMPLES) this.list.push(text);
  }
  toString(): string {
    return this.list.length === 0 ? '' : ` (e.g. ${this.list.join('; ')})`;
  }
}

/**
 * Holds the batch's ground truth and checks every outcome against it: exactly one outcome per
 * document, dead letters only for corrupt documents, the right type for the rest, and handler calls
 * that match the failures recorded (so no stage ever re-ran an upstream one). After a crash it also
 * knows where each recovered task stood, so it checks the resumed run's calls exactly too.
 */
export class Audit {
  // One byte per document each: with the ledger's five, 10 bytes a document.
  private readonly corrupt: Uint8Array;
  private readonly type: Uint8Array;
  private readonly outcomes: Uint8Array;
  private readonly fate: Uint8Array;
  private readonly origin: Uint8Array;
  duplicates = 0;
  completed = 0;
  deadLettered = 0;
  /** Outcomes read back from the journal that were delivered in this run: did they agree? */
  private readBack = 0;
  private readonly disagree = new Notes();
  private readonly wrongFate = new Notes();
  private readonly misfiled = new Notes();
  private readonly replays = new Notes();

  constructor(
    readonly documents: number,
    private readonly ledger: CallLedger,
    /** Set when resuming a crashed run's batch. */
    private readonly start?: JournalAtStart,
  ) {
    this.corrupt = new Uint8Array(documents);
    this.type = new Uint8Array(documents);
    this.outcomes = new Uint8Array(documents);
    this.fate = new Uint8Array(documents);
    this.origin = new Uint8Array(documents);
  }

  /** Records a document's truth before it is sent. */
  expect(doc: SyntheticDocument): void {
    this.corrupt[doc.index] = doc.corruption === null ? 0 : 1;
    this.type[doc.index] = DOC_TYPES.indexOf(doc.type);
  }

  /** A task pending in the journal when this run started (recovered, not sent by this run). */
  wasRecovered(index: number): boolean {
    return (this.start?.stageAt[index] ?? 0) > 0;
  }

  /** An outcome delivered to this run, or (`earlier`) one an earlier process finished, read back. */
  observe(o: Outcome<StoredDoc>, earlier = false): void {
    const i = docIndex(o.id);
    if (this.outcomes[i]! > 0) this.duplicates++;
    this.outcomes[i] = Math.min(255, this.outcomes[i]! + 1);
    this.fate[i] = o.status === 'completed' ? COMPLETED : DEAD;
    if (earlier) this.origin[i] = EARLIER;
    const corrupt = this.corrupt[i] === 1;
    if (o.status === 'completed') {
      this.completed++;
      if (corrupt) this.wrongFate.add(`${o.id} is corrupt but completed`);
      else if (o.output?.type !== DOC_TYPES[this.type[i]!]) this.misfiled.add(`${o.id} stored as ${o.output?.type}, is ${DOC_TYPES[this.type[i]!]}`);
    } else {
      this.deadLettered++;
      if (!corrupt) this.wrongFate.add(`${o.id} is healthy but was dead-lettered at ${o.stage}: ${o.error?.message}`);
    }
    this.auditCalls(i, o, earlier);
  }

  /**
   * The journal's record of a document, read back at the end: an outcome finished by an earlier
   * (crashed) process is counted here, since it is not delivered again; one delivered in this run must agree.
   */
  recorded(index: number, o: Outcome<StoredDoc> | undefined): void {
    if (this.outcomes[index]! === 0) {
      if (o !== undefined) this.observe(o, true);
      return;
    }
    this.readBack++;
    const delivered = this.fate[index] === COMPLETED ? 'completed' : 'dead-lettered';
    if (o?.status !== delivered) this.disagree.add(`${docId(index)} was delivered ${delivered}, the journal says ${o?.status ?? 'nothing'}`);
  }

  /**
   * Calls in this process: every stage the task reached ran once more than it failed there, stages
   * before the one it started at here never (a task finished by an earlier process: none at all).
   */
  private auditCalls(i: number, o: Outcome<StoredDoc>, earlier: boolean): void {
    const stageAt = this.start?.stageAt[i] ?? 0;
    const last = STAGES.indexOf(o.stage as (typeof STAGES)[number]);
    const first = stageAt > 0 ? stageAt - 1 : 0;
    // Failures this process saw: after those the journal held at the crash, and not the
    // ERR_PROCESS_DIED notes recovery adds for runs of an earlier process.
    const errors = o.errors.slice(stageAt > 0 ? this.start!.errorsAt[i] : 0).filter((e) => e.error.code !== 'ERR_PROCESS_DIED');
    STAGES.forEach((stage, s) => {
      let failures = 0;
      for (const e of errors) if (e.stage === stage) failures++;
      const expected = earlier || s < first || s > last ? 0 : s < last || o.status === 'completed' ? failures + 1 : failures;
      const calls = this.ledger.count(stage, i);
      if (calls !== expected) this.replays.add(`${o.id}: ${stage} ran ${calls}x, expected ${expected} (${failures} failures there, ended ${o.status} at ${o.stage}${stageAt > 0 ? `, recovered at ${STAGES[first]}` : ''}${earlier ? ', finished before the crash' : ''})`);
    });
  }

  checks(input: AuditInput): Check[] {
    const { sent, stats, journal } = input;
    const start = this.start;
    const missing = new Notes();
    let corrupt = 0;
    let fresh = 0;
    let recovered = 0;
    let earlier = 0;
    let healthyReplays = 0;
    for (let i = 0; i < sent; i++) {
      if (this.outcomes[i] === 0) missing.add(docId(i));
      if (this.corrupt[i] === 1) corrupt++;
      if (this.origin[i] === EARLIER) earlier++;
      else if (this.wasRecovered(i)) recovered++;
      else {
        fresh++;
        if (this.corrupt[i] === 0 && this.ledger.count('ingest', i) !== 1) healthyReplays++;
      }
    }
    const ended = this.completed + this.deadLettered;
    const before = start === undefined ? 0 : start.pending + start.completed + start.dead;
    const checks: Check[] = [
      {
        name: 'completed + dead-lettered = sent, one outcome each',
        pass: ended === sent && missing.count === 0 && this.duplicates === 0 && stats.accepted === sent - input.duplicateSends && input.duplicateSends === before && stats.pending === 0,
        detail:
          `${this.completed} + ${this.deadLettered} = ${ended} of ${sent} sent; ${missing.count} without an outcome${missing}; ${this.duplicates} duplicate outcomes; ` +
          `${stats.accepted} accepted and ${input.duplicateSends} answered 'duplicate' (the journal held ${before}); pending at the end ${stats.pending}`,
      },
    ];
    if (journal !== undefined) {
      const records = journal.completed + journal.dead;
      checks.push({
        name: 'the journal holds exactly one finished record per document',
        pass: records === sent && journal.pending === 0 && journal.completed === this.completed && journal.dead === this.deadLettered && this.disagree.count === 0,
        detail:
          `journal: ${journal.completed} completed + ${journal.dead} dead = ${records} records, ${journal.pending} pending; ` +
          `${earlier} outcomes of an earlier run read back, ${this.readBack} delivered here re-read, ${this.disagree.count} disagree${this.disagree}`,
      });
    }
    const deadNotCorrupt = journal?.deadIds.filter((id) => this.corrupt[docIndex(id)] !== 1) ?? [];
    checks.push({
      name: 'dead letters are exactly the corrupt documents',
      pass: this.wrongFate.count === 0 && this.deadLettered === corrupt && missing.count === 0 && (journal === undefined || (journal.deadIds.length === corrupt && deadNotCorrupt.length === 0)),
      detail:
        `${this.deadLettered} dead-lettered, ${corrupt} corrupt, ${this.wrongFate.count} mismatches${this.wrongFate}` +
        (journal === undefined ? '' : `; the journal's dead letters: ${journal.deadIds.length}, ${deadNotCorrupt.length} of them healthy${deadNotCorrupt.length > 0 ? ` (e.g. ${deadNotCorrupt.slice(0, EXAMPLES).join(', ')})` : ''}`),
    });
    checks.push({
      name: 'no upstream replay (each stage ran once per document plus its own failures)',
      pass: this.replays.count === 0 && healthyReplays === 0,
      detail:
        start === undefined
          ? `ingest ran exactly once for ${fresh - corrupt - healthyReplays} of ${fresh - corrupt} healthy documents; ${this.replays.count} call-count mismatches${this.replays}`
          : `checked for the handler calls of this run only (the crashed run's calls died with it): ${fresh} documents sent fresh ran every stage once plus its failures; ` +
            `${recovered} recovered ones ran nothing before the stage the journal had them at, which ran again if it was in flight at the kill (at-least-once); ` +
            `${earlier} finished before the crash ran nothing; ${this.replays.count + healthyReplays} mismatches${this.replays}`,
    });
    const strays = new Notes();
    for (const id of input.store.ids) if (this.fate[docIndex(id)] !== COMPLETED) strays.add(id);
    checks.push({
      name: 'every completed document is stored once, with its true type',
      pass: input.store.count === this.completed && strays.count === 0 && this.misfiled.count === 0,
      detail:
        `${input.store.count} rows for ${this.completed} completed, ${strays.count} rows of documents that did not complete${strays}; ${this.misfiled.count} misfiled${this.misfiled}` +
        (input.store.repeated > 0 ? `; ${input.store.repeated} repeated writes (runs redone after the kill) left no second row` : ''),
    });
    return checks;
  }
}
