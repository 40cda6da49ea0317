import { decode } from '../src/codec.js';
import type { StoredOutcome } from '../src/journal/journal.js';
import type { AttemptError } from '../actors/envelope.js';
import type { Outcome } from '../actors/outcomes.js';

/** A finished task as the journal holds it, as the Outcome a pipeline reports. */
export function outcomeOf<O>(r: StoredOutcome): Outcome<O> {
  // A row that does not decode is reported, not thrown: one damaged row must not stop an operator
  // from reading every other dead letter.
  const errors = r.errors === undefined ? [] : decodeOr<AttemptError[]>(r.errors, () => [{ stage: r.stage, attempt: r.attempts, at: r.finishedAt, charged: false, error: unreadable(r.id, 'error history') }]);
  const last = errors[errors.length - 1]?.error;
  const base = { id: r.id, key: r.key, errors, stage: r.stage, attempts: r.attempts };
  if (r.status === 'completed') return { ...base, status: 'completed', output: (r.output === undefined ? undefined : decodeOr<O | undefined>(r.output, () => undefined)) as O };
  return { ...base, status: 'dead-lettered', error: { ...(last ?? { name: 'BatonError', message: r.code ?? 'dead-lettered' }), code: r.code ?? 'ERR_TASK_FAILED' } };
}

function decodeOr<T>(bytes: Uint8Array, fallback: () => T): T {
  try {
    return decode<T>(bytes);
  } catch {
    return fallback();
  }
}

function unreadable(id: string, what: string): { name: string; code: string; message: string } {
  return { name: 'BatonError', code: 'ERR_JOURNAL_CORRUPT', message: `the journal's ${what} of task ${id} cannot be read; its raw bytes are left in the journal row` };
}
