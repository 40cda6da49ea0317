import { BatonError, type BatonErrorCode } from '../src/errors.js';

/**
 * The code a failure Baton decided here (a dead worker, an input that cannot cross) dead-letters its
 * task with, or undefined for whatever a handler threw (dead-lettered as ERR_TASK_FAILED: a
 * BatonError from the user's own code keeps its code in the attempt's error only).
 */
export function decidedCode(thrown: unknown): string | undefined {
  return typeof thrown === 'object' && thrown !== null && DECIDED.has(thrown) ? (thrown as BatonError).code : undefined;
}

const DECIDED = new WeakSet<object>();

export function decided(code: BatonErrorCode, message: string, details: Record<string, unknown>): BatonError {
  const err = new BatonError(code, message, details);
  DECIDED.add(err);
  return err;
}

/** [name, message, code or null, 1 if Baton refused the output]: a handler's failure as it crosses back. */
export type ErrorTuple = [string, string, string | null, number?];

export function rebuild([name, message, code, refused]: ErrorTuple): Error {
  if (refused === 1) return decided(code as BatonErrorCode, message, {});
  const err = new Error(message) as Error & { code?: string };
  err.name = name;
  if (code !== null) err.code = code;
  return err;
}
