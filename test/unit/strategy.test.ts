import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { calculateDelay, oneForAll, oneForOne, restartSet, restForOne, shouldRestart, type StrategyKind } from '../../system/index.js';
import { expectBatonError } from '../support/assertions.js';

describe('shouldRestart', () => {
  it.each([
    ['permanent_normal restarts', 'permanent', 'normal', true],
    ['permanent_crash restarts', 'permanent', 'crash', true],
    ['transient_normal does not restart', 'transient', 'normal', false],
    ['transient_crash restarts', 'transient', 'crash', true],
    ['temporary_normal does not restart', 'temporary', 'normal', false],
    ['temporary_crash does not restart', 'temporary', 'crash', false],
  ] as const)('%s', (_sentence, type, exit, expected) => {
    expect(shouldRestart(type, exit)).toBe(expected);
  });
});

describe('restartSet with 5 children', () => {
  it.each([
    ['one-for-one', 'first', 0, [0]],
    ['one-for-one', 'middle', 2, [2]],
    ['one-for-one', 'last', 4, [4]],
    ['one-for-all', 'first', 0, [0, 1, 2, 3, 4]],
    ['one-for-all', 'middle', 2, [0, 1, 2, 3, 4]],
    ['one-for-all', 'last', 4, [0, 1, 2, 3, 4]],
    ['rest-for-one', 'first', 0, [0, 1, 2, 3, 4]],
    ['rest-for-one', 'middle', 2, [2, 3, 4]],
    ['rest-for-one', 'last', 4, [4]],
  ] as const)('%s at the %s child (index %i) restarts %j', (kind, _where, failed, expected) => {
    expect(restartSet(kind, failed, 5)).toEqual(expected);
  });

  it.each(['one-for-one', 'one-for-all', 'rest-for-one'] as const)('%s with a single child restarts just that child', (kind) => {
    expect(restartSet(kind, 0, 1)).toEqual([0]);
  });

  it('always contains the failed child, in ascending start order, within range (property)', () => {
    const kinds: StrategyKind[] = ['one-for-one', 'one-for-all', 'rest-for-one'];
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.integer({ min: 1, max: 40 }).chain((count) => fc.tuple(fc.constant(count), fc.integer({ min: 0, max: count - 1 }))), (kind, [count, failed]) => {
        const set = restartSet(kind, failed, count);
        expect(set).toContain(failed);
        expect([...set].sort((a, b) => a - b)).toEqual(set);
        expect(new Set(set).size).toBe(set.length);
        expect(set.every((i) => i >= 0 && i < count)).toBe(true);
      }),
    );
  });
});

describe('strategy factories', () => {
  it.each([
    ['oneForOne', oneForOne, 'one-for-one'],
    ['oneForAll', oneForAll, 'one-for-all'],
    ['restForOne', restForOne, 'rest-for-one'],
  ] as const)('%s() builds a %s strategy with the documented defaults', (_name, make, kind) => {
    const s = make();
    expect(s.kind).toBe(kind);
    expect(s.intensity).toEqual({ maxRestarts: 3, withinMs: 5_000 });
    expect(s.resetAfterMs).toBe(30_000);
    expect(s.backoff.minMs).toBe(0);
    expect(s.backoff.maxMs).toBe(0);
  });

  it.each([oneForOne, oneForAll, restForOne])('returns frozen data all the way down (%#)', (make) => {
    const s = make({ backoff: { minMs: 10 } });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.intensity)).toBe(true);
    expect(Object.isFrozen(s.backoff)).toBe(true);
    const d = make();
    expect(Object.isFrozen(d.backoff)).toBe(true);
  });

  it('restarts at once by default: every step of the default backoff is 0 ms', () => {
    const s = oneForOne();
    for (const n of [1, 2, 3, 50]) expect(calculateDelay(s.backoff, n, () => 0.99)).toBe(0);
  });

  it('takes intensity options and keeps the other defaults', () => {
    const s = oneForAll({ maxRestarts: 7 });
    expect(s.intensity).toEqual({ maxRestarts: 7, withinMs: 5_000 });
    expect(oneForAll({ withinMs: 250 }).intensity).toEqual({ maxRestarts: 3, withinMs: 250 });
  });

  it('fills a partial backoff from the restart defaults: x2, at most 10 s, ±20%', () => {
    expect(restForOne({ backoff: { minMs: 50 } }).backoff).toEqual({ minMs: 50, maxMs: 10_000, factor: 2, jitter: 0.2 });
  });

  it('starts a backoff given without minMs at 0 ms', () => {
    expect(oneForOne({ backoff: { factor: 3 } }).backoff.minMs).toBe(0);
  });

  it('takes resetAfterMs, including 0', () => {
    expect(oneForOne({ resetAfterMs: 0 }).resetAfterMs).toBe(0);
    expect(oneForOne({ resetAfterMs: 1_234 }).resetAfterMs).toBe(1_234);
  });

  it('builds equal but independent strategies on each call', () => {
    expect(oneForOne({ maxRestarts: 1 })).toEqual(oneForOne({ maxRestarts: 1 }));
    expect(oneForOne({ maxRestarts: 1 }).intensity.maxRestarts).not.toBe(oneForOne().intensity.maxRestarts);
  });
});

describe('strategy factory validation', () => {
  it.each([
    ['strategy.maxRestarts', { maxRestarts: -1 }],
    ['strategy.withinMs', { withinMs: 0 }],
    ['strategy.resetAfterMs', { resetAfterMs: -1 }],
    ['strategy.resetAfterMs', { resetAfterMs: Number.NaN }],
    ['strategy.backoff.factor', { backoff: { factor: 0.5 } }],
    ['strategy.backoff.jitter', { backoff: { jitter: 3 } }],
    ['strategy.backoff.maxMs', { backoff: { minMs: 100, maxMs: 10 } }],
  ] as const)('refuses an option with ERR_INVALID_OPTION naming %s', (option, options) => {
    expectBatonError(() => oneForOne(options), 'ERR_INVALID_OPTION', option);
    expectBatonError(() => restForOne(options), 'ERR_INVALID_OPTION', option);
  });
});
