import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff, calculateDelay, seededRandom, type BackoffPolicy, type Random } from '../../system/index.js';
import { expectBatonError } from '../support/assertions.js';

/** A random source that always returns `v` (0 is the low edge of the jitter, just below 1 the high edge). */
const fixed = (v: number): Random => () => v;
const LOW = fixed(0);
const MID = fixed(0.5);
const HIGH = fixed(1 - 2 ** -53);

/** The un-jittered delay the doc comment promises: min(maxMs, minMs * factor^(n-1)). */
const baseOf = (p: BackoffPolicy, n: number): number => Math.min(p.maxMs, p.minMs * Math.pow(p.factor, n - 1));

describe('backoff() defaults', () => {
  it('fills in the retry defaults of 100 ms, x2, at most 30 s, ±20%', () => {
    expect(backoff()).toEqual({ minMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2 });
  });

  it('treats an option given as undefined as left out', () => {
    expect(backoff({ minMs: undefined, jitter: undefined })).toEqual(backoff());
  });

  it('returns a frozen policy', () => {
    expect(Object.isFrozen(backoff({ minMs: 5 }))).toBe(true);
  });
});

describe('calculateDelay with jitter 0', () => {
  const p = backoff({ jitter: 0 });

  it('doubles from 100 ms and caps at 30,000 ms', () => {
    const delays = Array.from({ length: 12 }, (_, i) => calculateDelay(p, i + 1, MID));
    expect(delays).toEqual([100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000, 30_000]);
  });

  it('does not draw from the random source', () => {
    let draws = 0;
    calculateDelay(p, 3, () => (draws++, 0.5));
    expect(draws).toBe(0);
  });

  it.each([0, -1, -1e9, 0.5, -Infinity])('is 0 for step n = %s (before the first step)', (n) => {
    expect(calculateDelay(p, n, MID)).toBe(0);
  });

  it.each([1_000, 1e9, Number.MAX_SAFE_INTEGER, Infinity])('is the cap, a finite number, for a huge step n = %s', (n) => {
    expect(calculateDelay(p, n, MID)).toBe(30_000);
  });

  it('stays finite for a huge step when minMs is 0 and the factor is large', () => {
    const zeroStart = backoff({ minMs: 0, maxMs: 5_000, factor: 10, jitter: 0 });
    for (const n of [400, 2_000, 1e9]) {
      const d = calculateDelay(zeroStart, n, MID);
      expect(Number.isFinite(d), `n=${n} gave ${d}`).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(5_000);
    }
  });

  it('is constant with factor 1', () => {
    const flat = backoff({ minMs: 250, factor: 1, jitter: 0 });
    for (const n of [1, 2, 10, 1_000]) expect(calculateDelay(flat, n, MID)).toBe(250);
  });

  it('is always 0 when maxMs is 0', () => {
    const none = backoff({ minMs: 0, maxMs: 0 });
    for (const n of [1, 5, 100]) expect(calculateDelay(none, n, HIGH)).toBe(0);
  });
});

describe('calculateDelay with the default ±20% jitter', () => {
  const p = backoff();

  it('stays within min..max of the jittered base for every step from 1 to 40', () => {
    const sources: Random[] = [LOW, MID, HIGH, seededRandom(7), seededRandom(8)];
    for (let n = 1; n <= 40; n++) {
      const base = baseOf(p, n);
      for (const r of sources) {
        const d = calculateDelay(p, n, r);
        expect(d).toBeGreaterThanOrEqual(base * 0.8 - 1e-9);
        expect(d).toBeLessThanOrEqual(Math.min(p.maxMs, base * 1.2) + 1e-9);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(30_000);
      }
    }
  });

  it('reaches the low edge with random 0 and the high edge just below 1', () => {
    expect(calculateDelay(p, 1, LOW)).toBeCloseTo(80, 9);
    expect(calculateDelay(p, 1, HIGH)).toBeCloseTo(120, 9);
    expect(calculateDelay(p, 2, MID)).toBeCloseTo(200, 9);
  });

  it('never pushes a capped delay above maxMs (24..30 s at the cap)', () => {
    expect(calculateDelay(p, 10, HIGH)).toBe(30_000);
    expect(calculateDelay(p, 10, LOW)).toBeCloseTo(24_000, 9);
    expect(calculateDelay(p, 50, MID)).toBeLessThanOrEqual(30_000);
  });

  it('never goes negative with jitter 1', () => {
    const wild = backoff({ jitter: 1 });
    expect(calculateDelay(wild, 1, LOW)).toBe(0);
    expect(calculateDelay(wild, 3, HIGH)).toBeLessThanOrEqual(800);
  });

  it('stays within its bounds for any valid policy, step and seed (property)', () => {
    const policy = fc.record({
      minMs: fc.integer({ min: 0, max: 10_000 }),
      extra: fc.integer({ min: 0, max: 100_000 }),
      factor: fc.double({ min: 1, max: 10, noNaN: true }),
      jitter: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(policy, fc.integer({ min: 1, max: 300 }), fc.integer(), ({ minMs, extra, factor, jitter }, n, seed) => {
        const p = backoff({ minMs, maxMs: minMs + extra, factor, jitter });
        const base = baseOf(p, n);
        const d = calculateDelay(p, n, seededRandom(seed));
        const eps = 1e-6 * Math.max(1, base);
        expect(Number.isFinite(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(Math.max(0, base * (1 - jitter)) - eps);
        expect(d).toBeLessThanOrEqual(Math.min(p.maxMs, base * (1 + jitter)) + eps);
      }),
    );
  });
});

describe('backoff() validation', () => {
  it.each([
    ['minMs', '-1', { minMs: -1 }],
    ['minMs', 'NaN', { minMs: Number.NaN }],
    ['minMs', 'Infinity', { minMs: Infinity }],
    ['maxMs', '499 below a minMs of 500', { minMs: 500, maxMs: 499 }],
    ['maxMs', 'NaN', { maxMs: Number.NaN }],
    ['factor', '0.5', { factor: 0.5 }],
    ['factor', 'Infinity', { factor: Infinity }],
    ['factor', 'NaN', { factor: Number.NaN }],
    ['jitter', '-0.1', { jitter: -0.1 }],
    ['jitter', '1.5', { jitter: 1.5 }],
    ['jitter', 'NaN', { jitter: Number.NaN }],
  ] as const)("refuses %s %s with ERR_INVALID_OPTION naming 'retry.backoff.<option>'", (option, _label, options) => {
    expectBatonError(() => backoff(options, undefined, 'retry.backoff'), 'ERR_INVALID_OPTION', `retry.backoff.${option}`);
  });

  it("names the option under 'backoff' when no path is given", () => {
    expectBatonError(() => backoff({ factor: 0 }), 'ERR_INVALID_OPTION', 'backoff.factor');
  });

  it('accepts the edges: minMs 0, maxMs equal to minMs, factor 1, jitter 0 and 1', () => {
    expect(() => backoff({ minMs: 0, maxMs: 0, factor: 1, jitter: 0 })).not.toThrow();
    expect(() => backoff({ minMs: 7, maxMs: 7, jitter: 1 })).not.toThrow();
  });

  it('checks maxMs against a minMs taken from the defaults', () => {
    expectBatonError(() => backoff({ maxMs: 50 }), 'ERR_INVALID_OPTION', 'backoff.maxMs');
  });
});
