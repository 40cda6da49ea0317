import { fnv1a } from './hash.js';

/**
 * A "PDF-like" container: a header, one object holding the text stream, and a trailer with a
 * checksum of the text. Small enough to parse with a few string checks, strict enough that
 * a broken header, a truncated file or a flipped byte is caught.
 *
 *   %PDF-SIM-1.0
 *   1 0 obj
 *   << /Type /LegalDoc /Id doc-000042 /Length 1234 >>
 *   stream
 *   ...text...
 *   endstream
 *   endobj
 *   trailer
 *   << /Root 1 0 R /Checksum 9f3a01c2 >>
 *   %%EOF
 */
export const PDF_HEADER = '%PDF-SIM-1.0';
const EOF_MARK = '%%EOF\n';
const OBJECT = /^1 0 obj\n<< \/Type \/LegalDoc \/Id ([\w-]+) \/Length (\d+) >>\nstream\n/;
const TAIL = '\nendstream\nendobj\ntrailer\n<< /Root 1 0 R /Checksum ';

export type CorruptCode = 'ERR_PDF_HEADER' | 'ERR_PDF_TRUNCATED' | 'ERR_PDF_STRUCTURE' | 'ERR_PDF_CHECKSUM';

/** Thrown by `parsePdf`: the input can never be parsed, however often it is retried. */
export class CorruptDocumentError extends Error {
  override readonly name = 'CorruptDocumentError';
  constructor(
    readonly code: CorruptCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ParsedPdf {
  readonly id: string;
  readonly text: string;
}

export function checksum(text: string): string {
  return fnv1a(text).toString(16).padStart(8, '0');
}

export function encodePdf(id: string, text: string): string {
  return `${PDF_HEADER}\n1 0 obj\n<< /Type /LegalDoc /Id ${id} /Length ${text.length} >>\nstream\n${text}${TAIL}${checksum(text)} >>\n${EOF_MARK}`;
}

export function parsePdf(raw: string): ParsedPdf {
  if (typeof raw !== 'string' || !raw.startsWith(PDF_HEADER + '\n')) {
    throw new CorruptDocumentError('ERR_PDF_HEADER', `not a ${PDF_HEADER} document: the header is missing or damaged`);
  }
  if (!raw.endsWith(EOF_MARK)) throw new CorruptDocumentError('ERR_PDF_TRUNCATED', `the document ends without %%EOF after ${raw.length} bytes`);
  const body = raw.slice(PDF_HEADER.length + 1);
  const obj = OBJECT.exec(body);
  if (obj === null) throw new CorruptDocumentError('ERR_PDF_STRUCTURE', 'object 1 (the text stream) is missing or malformed');
  const start = obj[0].length;
  const text = body.slice(start, start + Number(obj[2]));
  const rest = body.slice(start + text.length);
  if (!rest.startsWith(TAIL)) throw new CorruptDocumentError('ERR_PDF_STRUCTURE', 'the stream length does not match its endstream marker');
  const sum = rest.slice(TAIL.length, TAIL.length + 8);
  if (rest.length !== TAIL.length + 8 + ' >>\n'.length + EOF_MARK.length) throw new CorruptDocumentError('ERR_PDF_STRUCTURE', 'the trailer is malformed');
  if (sum !== checksum(text)) throw new CorruptDocumentError('ERR_PDF_CHECKSUM', `checksum mismatch: trailer says ${sum}, text hashes to ${checksum(text)}`);
  return { id: obj[1]!, text };
}
