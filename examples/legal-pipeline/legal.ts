import { DOC_TYPES, MONTHS, type DocType } from './legal-text.js';

/**
 * The pure legal analysis behind the classify, extract and validate agents: no state, no faults.
 * Each function throws a `LegalAnalysisError` when the text does not support an answer.
 */
export class LegalAnalysisError extends Error {
  override readonly name = 'LegalAnalysisError';
  constructor(
    readonly code: 'ERR_UNCLASSIFIABLE' | 'ERR_EXTRACTION' | 'ERR_VALIDATION',
    message: string,
  ) {
    super(message);
  }
}

export interface Fields {
  readonly type: DocType;
  readonly parties: readonly string[];
  /** As written: `March 3, 2021`. */
  readonly dates: readonly string[];
  /** In dollars. */
  readonly amounts: readonly number[];
  /** Clause headings, brief sections or numbered discovery requests. */
  readonly clauses: readonly string[];
}

export interface ValidFields extends Omit<Fields, 'dates'> {
  /** ISO dates, `2021-03-03`. */
  readonly dates: readonly string[];
}

const SIGNALS: Record<DocType, readonly RegExp[]> = {
  contract: [/\bAGREEMENT\b/, /\bentered into\b/, /\bWHEREAS\b/, /\bIN WITNESS WHEREOF\b/, /^\d+\. [A-Z][\w ]+\. /m],
  brief: [/\b(?:BRIEF|MEMORANDUM OF LAW)\b/, /^[IVX]+\. ARGUMENT$/m, /^[IVX]+\. CONCLUSION$/m, /\bRespectfully submitted\b/],
  discovery: [/^PROPOUNDING PARTY: /m, /^RESPONDING PARTY: /m, /\b(?:INTERROGATORY|REQUEST FOR (?:PRODUCTION|ADMISSION)) NO\. \d+:/, /\bwithin thirty \(30\) days of service\b/],
};

/** contract | brief | discovery, by which kind's signals the text shows most. */
export function classifyText(text: string): DocType {
  let best: DocType | undefined;
  let bestScore = 0;
  let tie = false;
  for (const type of DOC_TYPES) {
    const score = SIGNALS[type].reduce((n, re) => n + (re.test(text) ? 1 : 0), 0);
    if (score > bestScore) [best, bestScore, tie] = [type, score, false];
    else if (score === bestScore) tie = true;
  }
  if (best === undefined || tie || bestScore < 2) throw new LegalAnalysisError('ERR_UNCLASSIFIABLE', `no document type fits (best ${best ?? 'none'} with ${bestScore} signals${tie ? ', tied' : ''})`);
  return best;
}

const DATE = new RegExp(`\\b(?:${MONTHS.join('|')}) \\d{1,2}, \\d{4}\\b`, 'g');
const AMOUNT = /\$(\d{1,3}(?:,\d{3})*(?:\.\d{2})?)/g;
const CONTRACT_PARTIES = /by and between (.+?), a [^(]+\("(\w+)"\), and (.+?), a [^(]+\("(\w+)"\)/;
const CAPTION = /^(.+?), Plaintiff, v\. (.+?), Defendant\.$/m;
const CLAUSES: Record<DocType, RegExp> = {
  contract: /^\d+\. ([A-Z][\w ]+)\. /gm,
  brief: /^[IVX]+\. ([A-Z ]+)$/gm,
  discovery: /^((?:INTERROGATORY|REQUEST FOR (?:PRODUCTION|ADMISSION)) NO\. \d+):/gm,
};

/** Parties, dates, amounts and clauses, read the way each document type writes them. */
export function extractFields(type: DocType, text: string): Fields {
  let parties: string[];
  if (type === 'contract') {
    const m = CONTRACT_PARTIES.exec(text);
    parties = m === null ? [] : [m[1]!, m[3]!];
  } else {
    const m = CAPTION.exec(text);
    parties = m === null ? [] : [m[1]!, m[2]!];
  }
  if (parties.length === 0) throw new LegalAnalysisError('ERR_EXTRACTION', `no parties found in the ${type}`);
  const dates = text.match(DATE) ?? [];
  const amounts = [...text.matchAll(AMOUNT)].map((m) => Number(m[1]!.replace(/,/g, '')));
  const clauses = [...text.matchAll(CLAUSES[type])].map((m) => m[1]!);
  return { type, parties, dates, amounts, clauses };
}

const MIN_CLAUSES: Record<DocType, number> = { contract: 4, brief: 3, discovery: 1 };

/** Cross-checks the fields: dates exist on the calendar, amounts are positive, parties distinct. */
export function validateFields(f: Fields): ValidFields {
  const fail = (why: string): never => {
    throw new LegalAnalysisError('ERR_VALIDATION', `${f.type}: ${why}`);
  };
  if (f.parties.length !== 2 || f.parties.some((p) => p.trim() === '') || f.parties[0] === f.parties[1]) fail(`expected two distinct parties, got ${JSON.stringify(f.parties)}`);
  if (f.dates.length === 0) fail('no dates');
  const dates = f.dates.map((d) => isoDate(d) ?? fail(`'${d}' is not a calendar date`));
  if (f.type === 'contract' && f.amounts.length === 0) fail('a contract with no amounts');
  for (const a of f.amounts) if (!(Number.isFinite(a) && a > 0)) fail(`amount ${a} is not positive`);
  if (f.clauses.length < MIN_CLAUSES[f.type]) fail(`${f.clauses.length} clauses, expected at least ${MIN_CLAUSES[f.type]}`);
  return { ...f, dates };
}

function isoDate(written: string): string | undefined {
  const m = /^(\w+) (\d{1,2}), (\d{4})$/.exec(written);
  if (m === null) return undefined;
  const [month, day, year] = [MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[3])];
  const d = new Date(Date.UTC(year, month, day));
  if (month < 0 || year < 1990 || year > 2035 || d.getUTCDate() !== day) return undefined;
  return d.toISOString().slice(0, 10);
}
