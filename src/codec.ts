import { Packr } from 'msgpackr';
import { BatonError } from './errors.js';

/**
 * The codec of everything a durable journal stores: task inputs, stage outputs, error histories.
 * msgpackr is 3x faster than JSON to encode a 1 KB envelope. Two facts shape this file:
 * - `pack()` returns a view into a shared pool; a buffer kept until a later commit must be copied.
 * - some values do not round-trip (a function becomes undefined, a Map becomes an object, a key
 *   named `__proto__` comes back as `__proto_`). Baton refuses them with ERR_INVALID_INPUT instead
 *   of storing something other than what the handler returned.
 */
const packr = new Packr({ useRecords: false, moreTypes: true });

export function encode(value: unknown, what: string): Uint8Array {
  const problem = findUnserialisable(value, '$', 0);
  if (problem !== undefined) {
    throw new BatonError('ERR_INVALID_INPUT', `${what} cannot be stored in the journal: ${problem}. Durable pipelines accept plain data (plain objects, arrays, well-formed strings, numbers, booleans, null, Date, bigint, Uint8Array, Set).`, { what });
  }
  // Copy out of msgpackr's shared pool: the bytes wait for the next group commit.
  return Buffer.from(packr.pack(value));
}

/**
 * Why `value` would not come back as it went in through msgpack (at `path`, '$' for the value
 * itself), or undefined if it would. The journal and the worker-thread crossing refuse the same values.
 */
export function unserialisable(value: unknown, path = '$'): string | undefined {
  return findUnserialisable(value, path, 0);
}

export function decode<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/** A UTF-16 surrogate without its pair: msgpack stores UTF-8, so it would come back as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function findUnserialisable(v: unknown, path: string, depth: number): string | undefined {
  if (depth > 64) return `${path} is nested more than 64 levels deep (a cycle?)`;
  switch (typeof v) {
    case 'string':
      return LONE_SURROGATE.test(v) ? `${path} is a string with an unpaired UTF-16 surrogate (it would come back as U+FFFD)` : undefined;
    case 'function':
      return `${path} is a function`;
    case 'symbol':
      return `${path} is a symbol`;
    case 'object': {
      if (v === null || v instanceof Date || v instanceof Uint8Array) return undefined;
      if (v instanceof Map) return `${path} is a Map (it would come back as a plain object); use an object or an array of pairs`;
      if (Array.isArray(v) || v instanceof Set) {
        let i = 0;
        for (const item of v) {
          const p = findUnserialisable(item, `${path}[${i++}]`, depth + 1);
          if (p !== undefined) return p;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null;
      if (proto !== Object.prototype && proto !== null) {
        return `${path} is a ${proto.constructor?.name || 'non-plain'} object (it would come back as a plain object or {}); convert it to plain data`;
      }
      if (Object.getOwnPropertySymbols(v).length > 0) return `${path} has a symbol key (it would be dropped); use string keys`;
      for (const key of Object.keys(v)) {
        if (key === '__proto__') return `${path} has a key named "__proto__" (msgpackr renames it); rename the key`;
        if (LONE_SURROGATE.test(key)) return `${path} has a key with an unpaired UTF-16 surrogate (it would come back as U+FFFD)`;
        const p = findUnserialisable((v as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
