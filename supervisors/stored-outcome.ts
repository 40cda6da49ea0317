import { decode } from '../src/codec.js';
import type { StoredOutcome } from '../src/journal/journal.js';
import type { AttemptError } from '../actors/envelope.js';
import type { Outcome } from '../actors/outcomes.js';

/** A finished task as the journal holds it, as the Outcome a pipeline reports. */
export function outcomeOf<O>(r: StoredOutcome): Outcome<O> {
  const errors = r.errors === undefined ? [] : decode<AttemptError[]>(r.errors);
  const last = errors[errors.length - 1]?.error;
  const base = { id: r.id, key: r.key, errors, stage: r.stage, attempts: r.attempts };
  if (r.status === 'completed') return { ...base, status: 'completed', output: (r.output === undefined ? undefined : decode<O>(r.output)) as O };
  return { ...base, status: 'dead-lettered', error: { ...(last ?? { name: 'BatonError', message: r.code ?? 'dead-lettered' }), code: r.code ?? 'ERR_TASK_FAILED' } };
}
