import { expect } from 'vitest';
import { isBatonError, type BatonErrorCode } from '../../system/index.js';

/**
 * Runs `fn`, expects it to throw a BatonError with `code`, and, when `option` is given, expects
 * the error to name that option both in `details.option` and in its message. Returns the error.
 */
export function expectBatonError(fn: () => unknown, code: BatonErrorCode, option?: string): Error {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  expect(threw, 'expected a throw').toBe(true);
  expect(isBatonError(thrown), `expected a BatonError, got ${String(thrown)}`).toBe(true);
  if (!isBatonError(thrown)) throw new Error('unreachable');
  expect(thrown.code).toBe(code);
  if (option !== undefined) {
    expect(thrown.details['option']).toBe(option);
    expect(thrown.message).toContain(option);
  }
  return thrown;
}
