import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DurableLog, envelopeOf } from '../../supervisors/durable-log.js';
import type { AttemptError } from '../../actors/envelope.js';
import { decode, encode } from '../../src/codec.js';
import { BatonError, toErrorInfo, type BatonErrorCode } from '../../src/errors.js';
import type { PipelineJournal } from '../../src/journal/journal.js';
import { checkProperty } from '../../testkit/property.js';
import { expectBatonError } from '../support/assertions.js';

/**
 * The journal codec (src/codec.ts). Documented: durable pipelines accept plain data (objects,
 * arrays, strings, numbers, booleans, null, Date, bigint, Uint8Array, Set) and get back what they
 * stored; a function, a symbol, a Map or an own key named "__proto__" is refused with
 * ERR_INVALID_INPUT naming where it is (`$` is the value, `.key` an object key, `[i]` an array or
 * Set position).
 *
 * codec.ts says nothing about -0: msgpackr writes it as the integer 0, so it comes back as +0. The
 * round-trip property compares modulo that (and modulo null-prototype objects, which come back with
 * Object.prototype: fast-check generates them, and the codec calls them objects); the example tests
 * below pin both facts so a change in them is noticed.
 */

// ---- generators -----------------------------------------------------------------------------

/** A key of a generated object: never "__proto__" (the refused case has its own property). */
const key = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 4 })).filter((k) => k !== '__proto__');

/** Well-formed unicode: whole code points (astral ones too), grapheme clusters, and the ASCII control range. */
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 10 }), fc.string({ unit: 'binary-ascii', maxLength: 10 }));

const number = fc.oneof(
  fc.double(), // includes -0, NaN, ±Infinity, subnormals, ±Number.MAX_VALUE
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, -0, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 53 + 2, 2 ** 64, 0.1),
);

const leaf = fc.oneof(
  text,
  number,
  fc.boolean(),
  fc.constant(null),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 16 }),
);

/** Plain data as the codec documents it, nested a few levels. */
const { data } = fc.letrec<{ data: unknown }>((tie) => ({
  data: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('data'), { maxLength: 4 }),
    fc.dictionary(key, tie('data'), { maxKeys: 4 }),
    fc.array(tie('data'), { maxLength: 4 }).map((items) => new Set(items)),
  ),
}));

/** Clean JSON too (fast-check's own generator), with unicode strings. Its dictionaries may use "__proto__" as a key: those go. */
const json = fc.jsonValue({ maxDepth: 4, stringUnit: 'grapheme' }).filter((v) => !hasOwnProtoKey(v));

function hasOwnProtoKey(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v) || v instanceof Set) return [...v].some(hasOwnProtoKey);
  if (v instanceof Date || v instanceof Uint8Array) return false;
  return Object.keys(v).some((k) => k === '__proto__' || hasOwnProtoKey((v as Record<string, unknown>)[k]));
}

/** What decode(encode(x)) is documented to give back: x, with -0 as +0 and every object with Object.prototype. */
function expected(v: unknown): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v;
  if (v === null || typeof v !== 'object' || v instanceof Date || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(expected);
  if (v instanceof Set) return new Set([...v].map(expected));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = expected((v as Record<string, unknown>)[k]);
  return out;
}

// ---- values the codec refuses, planted at a generated place ----------------------------------

type Bad = { readonly what: 'function' | 'symbol' | 'Map' | '__proto__'; readonly value: unknown; readonly message: string };

const bad: fc.Arbitrary<Bad> = fc.oneof(
  fc.constant<Bad>({ what: 'function', value: () => 1, message: 'is a function' }),
  fc.string({ maxLength: 5 }).map<Bad>((d) => ({ what: 'symbol', value: Symbol(d), message: 'is a symbol' })),
  fc.array(fc.tuple(fc.string({ maxLength: 3 }), json), { maxLength: 3 }).map<Bad>((entries) => ({ what: 'Map', value: new Map(entries), message: 'is a Map' })),
  // An own enumerable "__proto__" key (JSON.parse and Object.fromEntries make one; a literal would set the prototype).
  fc.tuple(json, fc.dictionary(key, json, { maxKeys: 3 })).map<Bad>(([v, others]) => ({
    what: '__proto__',
    value: Object.fromEntries([...Object.entries(others), ['__proto__', v]]),
    message: 'has a key named "__proto__"',
  })),
);

/** One step from a container down to the place of the bad value: the container's other contents are clean. */
type Step =
  | { readonly kind: 'key'; readonly key: string; readonly siblings: Record<string, unknown> }
  | { readonly kind: 'array'; readonly before: unknown[]; readonly after: unknown[] }
  | { readonly kind: 'set'; readonly before: unknown[]; readonly after: unknown[] };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.tuple(key, fc.dictionary(key, json, { maxKeys: 3 })).map<Step>(([k, siblings]) => ({ kind: 'key', key: k, siblings })),
  fc.tuple(fc.array(json, { maxLength: 3 }), fc.array(json, { maxLength: 3 })).map<Step>(([before, after]) => ({ kind: 'array', before, after })),
  fc.tuple(fc.array(json, { maxLength: 3 }), fc.array(json, { maxLength: 3 })).map<Step>(([before, after]) => ({ kind: 'set', before, after })),
);

/** Builds the value from the bad one outwards and the path the codec should name, `$` first. */
function plant(steps: readonly Step[], value: unknown): { value: unknown; path: string } {
  let inner = value;
  const segments: string[] = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i]!;
    if (s.kind === 'key') {
      // The bad value's key goes last, after clean siblings (same-named sibling replaced).
      const entries: [string, unknown][] = [...Object.entries(s.siblings).filter(([k]) => k !== s.key), [s.key, inner]];
      inner = Object.fromEntries(entries);
      segments.unshift(`.${s.key}`);
    } else if (s.kind === 'array') {
      const arr = [...s.before, inner, ...s.after];
      segments.unshift(`[${s.before.length}]`);
      inner = arr;
    } else {
      const child = inner;
      const set = new Set([...s.before, child, ...s.after]);
      // A Set drops duplicate primitives: the position is where the child ends up.
      segments.unshift(`[${[...set].indexOf(child)}]`);
      inner = set;
    }
  }
  return { value: inner, path: `$${segments.join('')}` };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

// ---- properties -------------------------------------------------------------------------------

describe('the journal codec', () => {
  it('gives back what it stored for any plain data: nested objects, arrays, Sets, unicode strings, extreme numbers, bigint, Date, Uint8Array', async () => {
    await checkProperty(
      fc.property(data, (x) => {
        const back = decode(encode(x, 'the value'));
        expect(back).toStrictEqual(expected(x));
      }),
      { numRuns: 400 },
    );
  });

  it("gives back fast-check's JSON values unchanged", async () => {
    await checkProperty(
      fc.property(json, (x) => {
        expect(decode(encode(x, 'the value'))).toStrictEqual(expected(x));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a function, a symbol, a Map or an own "__proto__" key at any depth with ERR_INVALID_INPUT naming its path', async () => {
    await checkProperty(
      fc.property(fc.array(step, { maxLength: 12 }), bad, fc.string({ maxLength: 10 }), (steps, b, what) => {
        const { value, path } = plant(steps, b.value);
        const e = thrown(() => encode(value, `the output of ${what}`));
        expect(e).toBeInstanceOf(BatonError);
        expect((e as BatonError).code).toBe('ERR_INVALID_INPUT');
        expect((e as BatonError).message).toContain(`the output of ${what} cannot be stored in the journal: ${path} ${b.message}`);
      }),
      { numRuns: 400 },
    );
  });

  it('refuses a bad value even as deep as 64 levels, and anything nested deeper as a likely cycle', () => {
    const nest = (depth: number, leafValue: unknown) => {
      let v = leafValue;
      for (let i = 0; i < depth; i++) v = { a: v };
      return v;
    };
    expect(thrown(() => encode(nest(64, Symbol('s')), 'x'))).toMatchObject({ code: 'ERR_INVALID_INPUT', message: expect.stringContaining(`$${'.a'.repeat(64)} is a symbol`) });
    expect(thrown(() => encode(nest(65, 1), 'x'))).toMatchObject({ code: 'ERR_INVALID_INPUT', message: expect.stringContaining('nested more than 64 levels deep') });
    expect(decode(encode(nest(64, 1), 'x'))).toStrictEqual(nest(64, 1));
  });

  it('gives -0 back as +0 (codec.ts does not say so; msgpackr writes -0 as the integer 0)', () => {
    expect(Object.is(decode(encode(-0, 'x')), 0)).toBe(true);
    expect(Object.is(decode<number[]>(encode([-0], 'x'))[0], 0)).toBe(true);
  });

  it('gives back every string made of arbitrary UTF-16 code units, or refuses one with an unpaired surrogate, naming its path', async () => {
    const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 });
    await checkProperty(
      fc.property(codeUnits, (x) => {
        let out: unknown;
        try {
          out = decode(encode({ s: x }, 'x'));
        } catch (err) {
          expect(err).toMatchObject({ code: 'ERR_INVALID_INPUT' });
          expect((err as Error).message).toContain('$.s is a string with an unpaired UTF-16 surrogate');
          expect(/[\uD800-\uDFFF]/.test(x)).toBe(true);
          return;
        }
        expect(out).toEqual({ s: x });
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['a class instance', new (class Invoice {
      n = 1;
    })(), 'is a Invoice object'],
    ['a WeakMap', new WeakMap(), 'is a WeakMap object'],
    ['a Promise', Promise.resolve(1), 'is a Promise object'],
  ])('refuses %s instead of giving back a plain object', (_what, value, message) => {
    expectBatonError(() => encode({ v: [value] }, 'x'), 'ERR_INVALID_INPUT');
    expect(() => encode({ v: [value] }, 'x')).toThrow(`$.v[0] ${message}`);
  });

  it('refuses a symbol key (it would be dropped) and a key with an unpaired surrogate (it would change), naming the path', () => {
    expect(() => encode({ a: { [Symbol('k')]: 1 } }, 'x')).toThrow('$.a has a symbol key');
    expect(() => encode({ a: [{ ['ok\uD800']: 1 }] }, 'x')).toThrow('$.a[0] has a key with an unpaired UTF-16 surrogate');
    expectBatonError(() => encode({ [Symbol('k')]: 1 }, 'x'), 'ERR_INVALID_INPUT');
    // A surrogate pair in a key is fine.
    expect(decode(encode({ ['\uD83D\uDE00']: 1 }, 'x'))).toStrictEqual({ ['\uD83D\uDE00']: 1 });
  });

  it('gives a null-prototype object back as a plain object with the same keys', () => {
    const o = Object.assign(Object.create(null) as object, { a: 1 });
    expect(decode(encode(o, 'x'))).toStrictEqual({ a: 1 });
  });

});

// ---- error histories --------------------------------------------------------------------------

/**
 * What a handler throws reaches the journal as an attempt history: `toErrorInfo(thrown)` per failed
 * attempt, stored by `DurableLog.encodeErrors` on every `fail` and `dead`, read back by `envelopeOf`
 * when a pipeline recovers. A handler can throw anything, with any message: text cut off in the
 * middle of an emoji (an unpaired surrogate) is an ordinary message for a model's output. The
 * history is diagnostics, so the property asks for it back as the well-formed string JavaScript's
 * `toWellFormed` gives (each unpaired surrogate as U+FFFD, which is also what msgpack's UTF-8 makes
 * of it), and everything else exactly as it was.
 */
const codeUnitText = fc.string({ unit: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd800, max: 0xdfff })).map((c) => String.fromCharCode(c)), maxLength: 12 });
const message = fc.oneof(text, codeUnitText, fc.string({ unit: 'grapheme', maxLength: 6 }).map((t) => t.slice(0, Math.max(0, t.length - 1))));
const BATON_CODES: readonly BatonErrorCode[] = ['ERR_TIMEOUT', 'ERR_INVALID_INPUT', 'ERR_TASK_FAILED', 'ERR_ESCALATED'];

/** Anything a handler may throw: Errors (with a name, a code), BatonErrors, strings, numbers, plain objects, bigint, undefined, a cycle. */
const thrownValue: fc.Arbitrary<unknown> = fc.oneof(
  message.map((m) => new Error(m)),
  fc.tuple(message, fc.constantFrom('TypeError', 'RangeError', 'AbortError', 'ModelError')).map(([m, name]) => Object.assign(new Error(m), { name })),
  fc.tuple(message, message).map(([m, code]) => Object.assign(new Error(m), { code })),
  fc.tuple(fc.constantFrom(...BATON_CODES), message).map(([code, m]) => new BatonError(code, m)),
  message,
  fc.oneof(fc.double(), fc.bigInt(), fc.constant(undefined), fc.constant(null)),
  fc.dictionary(key, json, { maxKeys: 3 }),
  fc.constant(undefined).map(() => {
    const cycle: Record<string, unknown> = { reason: 'cycle' };
    cycle['self'] = cycle;
    return cycle;
  }),
);

const attemptError: fc.Arbitrary<AttemptError> = fc.record({
  stage: fc.string({ minLength: 1, maxLength: 8 }),
  attempt: fc.integer({ min: 1, max: 20 }),
  at: fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e12, noNaN: true })),
  charged: fc.boolean(),
  error: thrownValue.map(toErrorInfo),
});

const UNPAIRED = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const wellFormed = (v: unknown): unknown =>
  typeof v === 'string' ? v.replace(UNPAIRED, '\uFFFD') : Array.isArray(v) ? v.map(wellFormed) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wellFormed(x)])) : v;

describe("the journal's error histories", () => {
  const log = new DurableLog({} as PipelineJournal, () => 0, 0, {} as never, () => undefined, (err) => err);

  it('stores the attempt history of any failure, whatever was thrown, and a recovered task reads it back', async () => {
    await checkProperty(
      fc.property(fc.array(attemptError, { maxLength: 6 }), (history) => {
        const bytes = log.encodeErrors(history);
        const env = envelopeOf({ id: 't', seq: 1, key: undefined, stage: 's', payload: encode(null, 'x'), attempts: history.length, errors: bytes });
        expect(env.errors).toStrictEqual(wellFormed(history));
      }),
      { numRuns: 200 },
    );
  });

  it('stores a missing history as an empty one', () => {
    expect(decode(log.encodeErrors(undefined))).toStrictEqual([]);
  });
});
