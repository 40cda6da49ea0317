import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff, breakerPolicy, calculateDelay, chargesProbe, intensity, isBatonError, onFreshFailure, onProbeFailure, onSuccess, recordRestart, restartSet, seededRandom, shouldRestart, startProbe, type BreakerState } from '../../system/index.js';

const noJitter = backoff({ minMs: 100, maxMs: 30_000, factor: 2, jitter: 0 });

describe('calculateDelay', () => {
  it('doubles from minMs and caps at maxMs: 100, 200, 400 ... 25,600, 30,000', () => {
    const r = seededRandom(1);
    expect([1, 2, 3, 9, 10, 11].map((n) => calculateDelay(noJitter, n, r))).toEqual([100, 200, 400, 25_600, 30_000, 30_000]);
  });

  it('is 0 before the first step and finite for absurd steps', () => {
    expect(calculateDelay(noJitter, 0, Math.random)).toBe(0);
    expect(calculateDelay(noJitter, 1e9, Math.random)).toBe(30_000);
  });

  it('stays within ±jitter of the base and never above maxMs nor below 0 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 60_000 }), fc.double({ min: 1, max: 4, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 60 }), fc.integer(), (min, extra, factor, jitter, n, seed) => {
        const p = backoff({ minMs: min, maxMs: min + extra, factor, jitter });
        const base = Math.min(p.maxMs, p.minMs * Math.pow(p.factor, n - 1));
        const d = calculateDelay(p, n, seededRandom(seed));
        return d >= Math.max(0, base * (1 - jitter)) - 1e-9 && d <= Math.min(p.maxMs, base * (1 + jitter)) + 1e-9;
      }),
    );
  });

  it.each([
    [{ minMs: -1 }, 'retry.backoff.minMs'],
    [{ minMs: 10, maxMs: 5 }, 'retry.backoff.maxMs'],
    [{ factor: 0.5 }, 'retry.backoff.factor'],
    [{ jitter: 2 }, 'retry.backoff.jitter'],
  ])('refuses %j naming %s', (options, path) => {
    try {
      backoff(options, undefined, 'retry.backoff');
      expect.unreachable();
    } catch (e) {
      expect(isBatonError(e, 'ERR_INVALID_OPTION') && e.message.startsWith(path)).toBe(true);
    }
  });
});

describe('restart intensity', () => {
  const p = intensity({ maxRestarts: 3, withinMs: 1_000 }, { maxRestarts: 10, withinMs: 60_000 });
  const run = (times: number[]) => times.reduce<{ ok: boolean[]; w: readonly number[] }>((acc, t) => {
    const d = recordRestart(p, acc.w, t);
    return { ok: [...acc.ok, d.restart], w: d.window };
  }, { ok: [], w: [] }).ok;

  it('allows maxRestarts restarts within the window and escalates on the next one', () => expect(run([0, 10, 20, 999])).toEqual([true, true, true, false]));
  it('still counts a restart exactly withinMs ago (the boundary is in)', () => expect(run([0, 10, 20, 1_000])).toEqual([true, true, true, false]));
  it('forgets a restart older than withinMs', () => expect(run([0, 10, 20, 1_001])).toEqual([true, true, true, true]));
  it('escalates at once with maxRestarts 0', () => expect(recordRestart(intensity({ maxRestarts: 0 }, p), [], 5).restart).toBe(false));
  it('never keeps more than maxRestarts + 1 times', () => {
    let w: readonly number[] = [];
    for (let t = 0; t < 100; t++) w = recordRestart(p, w, t).window;
    expect(w.length).toBeLessThanOrEqual(4);
  });
});

describe('restart decisions', () => {
  it.each([
    ['permanent', 'normal', true],
    ['permanent', 'crash', true],
    ['transient', 'normal', false],
    ['transient', 'crash', true],
    ['temporary', 'normal', false],
    ['temporary', 'crash', false],
  ] as const)('%s_%s restarts: %s', (type, exit, expected) => expect(shouldRestart(type, exit)).toBe(expected));

  it.each([
    ['one-for-one', 0, [0]],
    ['one-for-one', 2, [2]],
    ['one-for-all', 1, [0, 1, 2, 3]],
    ['rest-for-one', 0, [0, 1, 2, 3]],
    ['rest-for-one', 1, [1, 2, 3]],
    ['rest-for-one', 3, [3]],
  ] as const)('%s restarts %j when child %i of 4 fails', (kind, failed, expected) => expect(restartSet(kind, failed, 4)).toEqual(expected));
});

describe('the breaker', () => {
  const p = breakerPolicy({ threshold: 3, backoff: { jitter: 0 }, maxHoldMs: 10_000 });
  const r = seededRandom(1);
  const fail = (s: BreakerState, n: number, at = 0) => Array.from({ length: n }).reduce<BreakerState>((x) => onFreshFailure(p, x, at, r), s);

  it('opens on the threshold-th fresh failure in a row, not before', () => {
    expect(fail(onSuccess(fail({ status: 'closed', freshFailures: 0 }, 2)), 2).status).toBe('closed');
    expect(fail({ status: 'closed', freshFailures: 0 }, 3, 50)).toEqual({ status: 'open', probes: 0, openedAt: 50, probeAt: 1_050 });
  });

  it('waits longer after each failed probe: 1 s, 2 s, 4 s ... 60 s', () => {
    let s = fail({ status: 'closed', freshFailures: 0 }, 3);
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const at = (s as { probeAt: number }).probeAt;
      s = onProbeFailure(p, startProbe(s), at, r);
      waits.push((s as { probeAt: number }).probeAt - at);
    }
    expect(waits).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(onSuccess(s).status).toBe('closed');
  });

  it('charges a failed probe only once it has held for maxHoldMs', () => {
    const open = fail({ status: 'closed', freshFailures: 0 }, 3, 0);
    expect(chargesProbe(p, open, 9_999, true)).toBe(false);
    expect(chargesProbe(p, open, 10_000, true)).toBe(true);
  });
});
