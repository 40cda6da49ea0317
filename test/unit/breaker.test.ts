import { describe, expect, it } from 'vitest';
import { breakerPolicy, chargesProbe, onFreshFailure, onProbeFailure, onSuccess, seededRandom, startProbe, type BreakerPolicy, type BreakerState } from '../../system/index.js';
import { expectBatonError } from '../support/assertions.js';

const CLOSED: BreakerState = { status: 'closed', freshFailures: 0 };
const rnd = seededRandom(42);

/** Applies `count` fresh failures at time `now`. */
function failFresh(policy: BreakerPolicy, state: BreakerState, count: number, now = 0): BreakerState {
  let s = state;
  for (let i = 0; i < count; i++) s = onFreshFailure(policy, s, now, rnd);
  return s;
}

function probeAtOf(state: BreakerState): number {
  if (state.status !== 'open') throw new Error(`expected an open breaker, got ${state.status}`);
  return state.probeAt;
}

describe('breakerPolicy()', () => {
  it('defaults to threshold 5, a 5 min hold before repeated probes are charged, and probes after 1 s, x2, at most 60 s, ±20%', () => {
    const p = breakerPolicy();
    expect(p.threshold).toBe(5);
    expect(p.maxHoldMs).toBe(300_000);
    expect(p.backoff).toEqual({ minMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.2 });
  });

  it('returns frozen data', () => {
    const p = breakerPolicy({ threshold: 2 });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.backoff)).toBe(true);
  });

  it.each([
    ['breaker.threshold', '0', { threshold: 0 }],
    ['breaker.threshold', '1.5', { threshold: 1.5 }],
    ['breaker.threshold', 'NaN', { threshold: Number.NaN }],
    ['breaker.maxHoldMs', '-1', { maxHoldMs: -1 }],
    ['breaker.maxHoldMs', 'NaN', { maxHoldMs: Number.NaN }],
    ['breaker.backoff.jitter', '2', { backoff: { jitter: 2 } }],
    ['breaker.backoff.maxMs', 'below minMs', { backoff: { minMs: 5_000, maxMs: 10 } }],
  ] as const)('refuses %s = %s with ERR_INVALID_OPTION naming it', (option, _label, options) => {
    expectBatonError(() => breakerPolicy(options), 'ERR_INVALID_OPTION', option);
  });

  it('names the option under the path it is given', () => {
    expectBatonError(() => breakerPolicy({ threshold: 0 }, 'stages.extract.breaker'), 'ERR_INVALID_OPTION', 'stages.extract.breaker.threshold');
  });
});

describe('opening on fresh failures', () => {
  const p = breakerPolicy({ threshold: 5, backoff: { jitter: 0 } });

  it('stays closed after threshold - 1 fresh failures, counting them', () => {
    expect(failFresh(p, CLOSED, 4)).toEqual({ status: 'closed', freshFailures: 4 });
  });

  it('opens on the threshold-th fresh failure, with the first probe 1 s later', () => {
    const s = failFresh(p, CLOSED, 5, 7_000);
    expect(s).toEqual({ status: 'open', probes: 0, openedAt: 7_000, probeAt: 8_000 });
  });

  it('opens on the first failure with threshold 1', () => {
    const one = breakerPolicy({ threshold: 1, backoff: { jitter: 0 } });
    expect(failFresh(one, CLOSED, 1).status).toBe('open');
  });

  it('is reset by a success: threshold - 1 failures, a success, threshold - 1 more leave it closed', () => {
    let s = failFresh(p, CLOSED, 4);
    s = onSuccess(s);
    expect(s).toEqual({ status: 'closed', freshFailures: 0 });
    s = failFresh(p, s, 4);
    expect(s).toEqual({ status: 'closed', freshFailures: 4 });
    expect(failFresh(p, s, 1).status).toBe('open');
  });

  it('returns the same closed state from a success when nothing was counted', () => {
    const s: BreakerState = { status: 'closed', freshFailures: 0 };
    expect(onSuccess(s)).toBe(s);
  });

  it('ignores fresh failures while open or probing', () => {
    const open = failFresh(p, CLOSED, 5);
    expect(onFreshFailure(p, open, 100, rnd)).toBe(open);
    const probing = startProbe(open);
    expect(onFreshFailure(p, probing, 100, rnd)).toBe(probing);
  });

  it('jitters the first probe within ±20% of 1 s by default', () => {
    const jittered = breakerPolicy();
    for (let seed = 0; seed < 50; seed++) {
      const delay = probeAtOf(onFreshFailure(jittered, { status: 'closed', freshFailures: 4 }, 0, seededRandom(seed)));
      expect(delay).toBeGreaterThanOrEqual(800);
      expect(delay).toBeLessThanOrEqual(1_200);
    }
  });
});

describe('probing', () => {
  const p = breakerPolicy({ backoff: { jitter: 0 } });

  it('turns an open breaker into a probing one that remembers when the outage began', () => {
    const open = failFresh(p, CLOSED, 5, 300);
    expect(startProbe(open)).toEqual({ status: 'probing', probes: 0, openedAt: 300 });
  });

  it('does not start a probe on a closed breaker', () => {
    expect(startProbe(CLOSED)).toBe(CLOSED);
  });

  it('reopens after each failed probe with a growing delay: 2 s, 4 s, 8 s ... capped at 60 s', () => {
    let s = failFresh(p, CLOSED, 5, 0);
    const delays: number[] = [probeAtOf(s)];
    let now = probeAtOf(s);
    for (let i = 0; i < 8; i++) {
      s = onProbeFailure(p, startProbe(s), now, rnd);
      delays.push(probeAtOf(s) - now);
      now = probeAtOf(s);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('counts failed probes and keeps openedAt across them', () => {
    let s = failFresh(p, CLOSED, 5, 50);
    for (let i = 0; i < 3; i++) s = onProbeFailure(p, startProbe(s), 10_000 * (i + 1), rnd);
    expect(s).toMatchObject({ status: 'open', probes: 3, openedAt: 50 });
  });

  it('ignores a probe failure when no probe is running', () => {
    const open = failFresh(p, CLOSED, 5);
    expect(onProbeFailure(p, open, 5_000, rnd)).toBe(open);
    expect(onProbeFailure(p, CLOSED, 5_000, rnd)).toBe(CLOSED);
  });

  it('closes on a successful probe', () => {
    const probing = startProbe(failFresh(p, CLOSED, 5));
    expect(onSuccess(probing)).toEqual({ status: 'closed', freshFailures: 0 });
  });
});

describe('chargesProbe', () => {
  const p = breakerPolicy({ maxHoldMs: 10_000, backoff: { jitter: 0 } });
  const open = failFresh(p, CLOSED, 5, 500);
  const probing = startProbe(open);

  it('does not charge a failed probe before the breaker has held maxHoldMs', () => {
    expect(chargesProbe(p, probing, 500, true)).toBe(false);
    expect(chargesProbe(p, probing, 10_499, true)).toBe(false);
  });

  it('charges a repeated failed probe once the breaker has held exactly maxHoldMs', () => {
    expect(chargesProbe(p, probing, 10_500, true)).toBe(true);
  });

  it('charges a repeated failed probe after maxHoldMs, open or probing', () => {
    expect(chargesProbe(p, probing, 99_999, true)).toBe(true);
    expect(chargesProbe(p, open, 99_999, true)).toBe(true);
  });

  it("never charges a task's first failed probe of a hold, however long the hold", () => {
    expect(chargesProbe(p, probing, 99_999, false)).toBe(false);
  });

  it('never charges while the breaker is closed', () => {
    expect(chargesProbe(p, CLOSED, 1e12, true)).toBe(false);
  });

  it('never charges with maxHoldMs Infinity', () => {
    const forever = breakerPolicy({ maxHoldMs: Infinity, backoff: { jitter: 0 } });
    expect(chargesProbe(forever, startProbe(failFresh(forever, CLOSED, 5, 0)), 1e15, true)).toBe(false);
  });

  it('holds 5 minutes by default before a repeated failed probe is charged', () => {
    const defaults = breakerPolicy({ backoff: { jitter: 0 } });
    expect(defaults.maxHoldMs).toBe(300_000);
    const held = startProbe(failFresh(defaults, CLOSED, 5, 0));
    expect(chargesProbe(defaults, held, 299_999, true)).toBe(false);
    expect(chargesProbe(defaults, held, 300_000, true)).toBe(true);
  });

  it('charges every failed probe with maxHoldMs 0', () => {
    const never = breakerPolicy({ maxHoldMs: 0, backoff: { jitter: 0 } });
    expect(chargesProbe(never, startProbe(failFresh(never, CLOSED, 5, 42)), 42, true)).toBe(true);
  });
});
