import type { Random } from '../../system/index.js';

/** The three kinds of legal document the pipeline tells apart. */
export type DocType = 'contract' | 'brief' | 'discovery';
export const DOC_TYPES: readonly DocType[] = ['contract', 'brief', 'discovery'];

export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const COMPANIES = [
  'Acme Holdings LLC', 'Northwind Logistics Inc.', 'Bluefin Analytics Corp.', 'Cedar & Stone LLP', 'Helix Biotech Inc.',
  'Granite Peak Capital LP', 'Orchid Software Ltd.', 'Meridian Freight Co.', 'Silverline Media LLC', 'Tidewater Energy Inc.',
  'Quantum Ledger Corp.', 'Redwood Health Partners LLC', 'Ironclad Security Inc.', 'Lumen Retail Group Inc.', 'Harborview Properties LLC',
];
const FIRST = ['Maria', 'James', 'Aisha', 'Wei', 'Daniel', 'Priya', 'Oluwaseun', 'Elena', 'Marcus', 'Sofia', 'Hiroshi', 'Grace'];
const LAST = ['Okafor', 'Chen', 'Alvarez', 'Novak', 'Patel', 'Johansson', 'Reyes', 'Kowalski', 'Nguyen', 'Fischer', 'Haddad', 'Brennan'];
const STATES = ['Delaware', 'New York', 'California', 'Texas', 'Illinois', 'Washington', 'Massachusetts', 'Georgia'];
const ENTITIES = ['corporation', 'limited liability company', 'limited partnership'];
const DISTRICTS = ['SOUTHERN DISTRICT OF NEW YORK', 'NORTHERN DISTRICT OF CALIFORNIA', 'DISTRICT OF DELAWARE', 'NORTHERN DISTRICT OF ILLINOIS', 'WESTERN DISTRICT OF TEXAS'];
const CONTRACT_TITLES = ['MASTER SERVICES AGREEMENT', 'SOFTWARE LICENSE AGREEMENT', 'SUPPLY AGREEMENT', 'CONSULTING AGREEMENT', 'EQUIPMENT LEASE AGREEMENT'];
const BRIEF_TITLES = ['MEMORANDUM OF LAW IN SUPPORT OF MOTION FOR SUMMARY JUDGMENT', 'BRIEF IN OPPOSITION TO MOTION TO DISMISS', 'REPLY BRIEF IN SUPPORT OF MOTION FOR PRELIMINARY INJUNCTION', 'OPENING BRIEF ON CLAIM CONSTRUCTION'];
const DISCOVERY_TITLES: readonly [string, string][] = [
  ['FIRST SET OF INTERROGATORIES', 'INTERROGATORY'],
  ['SECOND SET OF INTERROGATORIES', 'INTERROGATORY'],
  ['FIRST REQUESTS FOR PRODUCTION OF DOCUMENTS', 'REQUEST FOR PRODUCTION'],
  ['REQUESTS FOR ADMISSION', 'REQUEST FOR ADMISSION'],
];
const SERVICES = ['cloud hosting services', 'freight forwarding services', 'clinical data management', 'security monitoring', 'marketing analytics'];
const OPTIONAL_CLAUSES: readonly [string, string][] = [
  ['Indemnification', 'Each party shall indemnify the other against third-party claims arising from its negligence.'],
  ['Assignment', 'Neither party may assign this Agreement without the prior written consent of the other.'],
  ['Notices', 'Notices shall be in writing and delivered by courier to the addresses set out above.'],
  ['Force Majeure', 'Neither party is liable for delay caused by events beyond its reasonable control.'],
  ['Audit Rights', 'Client may audit the records of Provider once per calendar year on reasonable notice.'],
];
const REQUESTS = [
  'Identify every payment exceeding {amount} made to {other} between {date} and {date2}.',
  'Produce all communications with {other} concerning the invoices dated {date}.',
  'Admit that {other} received the notice of default on {date}.',
  'Describe each meeting with {other} after {date} at which the amount of {amount} was discussed.',
];

const pick = <T>(rng: Random, list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
const int = (rng: Random, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

function date(rng: Random): string {
  return `${pick(rng, MONTHS)} ${int(rng, 1, 28)}, ${int(rng, 2012, 2025)}`;
}

/** `$12,500.00`: whole dollars with thousands separators and cents. */
function money(rng: Random, lo: number, hi: number): string {
  const cents = int(rng, lo * 100, hi * 100);
  const dollars = String(Math.floor(cents / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `$${dollars}.${String(cents % 100).padStart(2, '0')}`;
}

function twoParties(rng: Random, people: boolean): [string, string] {
  const name = (): string => (people && rng() < 0.4 ? `${pick(rng, FIRST)} ${pick(rng, LAST)}` : pick(rng, COMPANIES));
  const a = name();
  let b = name();
  while (b === a) b = name();
  return [a, b];
}

function caption(rng: Random, plaintiff: string, defendant: string): string {
  return `IN THE UNITED STATES DISTRICT COURT FOR THE ${pick(rng, DISTRICTS)}\n${plaintiff}, Plaintiff, v. ${defendant}, Defendant.\nCase No. ${int(rng, 1, 4)}:${int(rng, 15, 25)}-cv-${String(int(rng, 100, 99999)).padStart(5, '0')}`;
}

function contract(rng: Random): string {
  const [a, b] = twoParties(rng, false);
  const title = pick(rng, CONTRACT_TITLES);
  const clauses: [string, string][] = [
    ['Term', `This Agreement commences on the Effective Date and continues until ${date(rng)} unless terminated earlier.`],
    ['Fees', `Client shall pay Provider a fee of ${money(rng, 1_000, 250_000)} per month, invoiced monthly and due within thirty (30) days.`],
    ['Confidentiality', 'Each party shall protect the Confidential Information of the other with at least reasonable care.'],
    ['Limitation of Liability', `Neither party's aggregate liability under this Agreement shall exceed ${money(rng, 50_000, 5_000_000)}.`],
  ];
  for (const c of OPTIONAL_CLAUSES) if (rng() < 0.4) clauses.push(c);
  clauses.push(['Governing Law', `This Agreement is governed by the laws of the State of ${pick(rng, STATES)}.`]);
  return [
    title,
    `This ${title.toLowerCase().replace(/\b\w/g, (c) => c.toUpperCase())} (the "Agreement") is entered into as of ${date(rng)} (the "Effective Date") by and between ${a}, a ${pick(rng, STATES)} ${pick(rng, ENTITIES)} ("Provider"), and ${b}, a ${pick(rng, STATES)} ${pick(rng, ENTITIES)} ("Client").`,
    `WHEREAS, Provider offers ${pick(rng, SERVICES)}; and WHEREAS, Client wishes to obtain such services on the terms below;`,
    'NOW, THEREFORE, the parties agree as follows:',
    ...clauses.map(([head, body], i) => `${i + 1}. ${head}. ${body}`),
    `IN WITNESS WHEREOF, the parties have executed this Agreement on ${date(rng)}.`,
  ].join('\n');
}

function brief(rng: Random): string {
  const [p, d] = twoParties(rng, true);
  const side = rng() < 0.5 ? 'PLAINTIFF' : 'DEFENDANT';
  const lines = [
    `${side}'S ${pick(rng, BRIEF_TITLES)}`,
    caption(rng, p, d),
    'I. INTRODUCTION',
    `${p} brings this action to recover ${money(rng, 10_000, 9_000_000)} in damages arising from the breach by ${d} of the agreement dated ${date(rng)}.`,
    'II. STATEMENT OF FACTS',
    `On ${date(rng)}, ${d} failed to deliver the goods for which ${p} had paid ${money(rng, 5_000, 2_000_000)} in advance.`,
    'III. ARGUMENT',
    'The undisputed record shows each element of the claim; the authorities cited by the opposing party are not to the contrary.',
  ];
  if (rng() < 0.5) lines.push('IV. DAMAGES', `Interest has accrued since ${date(rng)} at the statutory rate.`);
  lines.push(`${lines.some((l) => l.startsWith('IV.')) ? 'V' : 'IV'}. CONCLUSION`, 'For the foregoing reasons, the Court should rule for the moving party.');
  lines.push(`Dated: ${date(rng)}`, `Respectfully submitted, ${pick(rng, FIRST)} ${pick(rng, LAST)}, Counsel of record`);
  return lines.join('\n');
}

function discovery(rng: Random): string {
  const [p, d] = twoParties(rng, true);
  const [title, item] = pick(rng, DISCOVERY_TITLES);
  const fromPlaintiff = rng() < 0.5;
  const [from, to] = fromPlaintiff ? [p, d] : [d, p];
  const lines = [
    `${fromPlaintiff ? 'PLAINTIFF' : 'DEFENDANT'}'S ${title}`,
    caption(rng, p, d),
    `PROPOUNDING PARTY: ${from}`,
    `RESPONDING PARTY: ${to}`,
    `INSTRUCTIONS: Respond in writing within thirty (30) days of service, on or before ${date(rng)}.`,
  ];
  const n = int(rng, 2, 6);
  for (let i = 1; i <= n; i++) {
    const text = pick(rng, REQUESTS).replace('{amount}', money(rng, 1_000, 500_000)).replace('{other}', from).replace('{date}', date(rng)).replace('{date2}', date(rng));
    lines.push(`${item} NO. ${i}: ${text}`);
  }
  lines.push(`Dated: ${date(rng)}`);
  return lines.join('\n');
}

const BUILDERS: Record<DocType, (rng: Random) => string> = { contract, brief, discovery };

/** A legal text of the given type, fully determined by `rng`. The first line is its title. */
export function legalText(type: DocType, rng: Random): string {
  return BUILDERS[type](rng);
}
