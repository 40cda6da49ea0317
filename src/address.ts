import { BatonError, describe } from './errors.js';

declare const addressMessage: unique symbol;

/**
 * A stable, serialisable name such as `legal/extract`. The phantom type parameter records the
 * message type the address accepts, so `system.lookup(address)` returns a typed ref.
 */
export type Address<M = unknown> = string & { readonly [addressMessage]?: M };

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

/** Validates one name (an actor, stage or pipeline name): letters, digits, _ . : - */
export function assertName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || !SEGMENT.test(name)) {
    throw new BatonError(
      'ERR_INVALID_OPTION',
      `${what} must be 1-128 characters of letters, digits, '_', '.', ':' or '-' (not starting with a punctuation mark); got ${describe(name)}.`,
      { option: what, value: name },
    );
  }
}

/** Builds and checks an address from its segments: `address('legal', 'extract')` is `legal/extract`. */
export function address<M = unknown>(...segments: string[]): Address<M> {
  segments.forEach((s, i) => assertName(s, `address segment ${i}`));
  return segments.join('/') as Address<M>;
}
