import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { intensity, recordRestart, type IntensityPolicy, type RestartWindow } from '../../system/index.js';
import { expectBatonError } from '../support/assertions.js';

const DEFAULTS: IntensityPolicy = { maxRestarts: 10, withinMs: 60_000 };

/** Feeds restart times through recordRestart and returns each decision (true = restart). */
function decide(policy: IntensityPolicy, times: readonly number[]): boolean[] {
  let window: RestartWindow = [];
  return times.map((t) => {
    const d = recordRestart(policy, window, t);
    window = d.window;
    return d.restart;
  });
}

describe('recordRestart with maxRestarts 3 within 1,000 ms', () => {
  const p = intensity({ maxRestarts: 3, withinMs: 1_000 }, DEFAULTS);

  it('allows restarts at 0, 10 and 20', () => {
    expect(decide(p, [0, 10, 20])).toEqual([true, true, true]);
  });

  it('escalates on a 4th restart at 999', () => {
    expect(decide(p, [0, 10, 20, 999])).toEqual([true, true, true, false]);
  });

  it('escalates on a 4th restart at 1,000 because the restart exactly withinMs ago still counts', () => {
    expect(decide(p, [0, 10, 20, 1_000])).toEqual([true, true, true, false]);
  });

  it('allows a 4th restart at 1,001 because the restart at 0 has left the window', () => {
    expect(decide(p, [0, 10, 20, 1_001])).toEqual([true, true, true, true]);
  });

  it('escalates at 1,010 when the restart at 10 is exactly withinMs ago and the one at 0 has left', () => {
    expect(decide(p, [0, 10, 20, 1_001, 1_010])).toEqual([true, true, true, true, false]);
  });

  it('allows 3 more restarts once the window is quiet for longer than withinMs', () => {
    expect(decide(p, [0, 10, 20, 5_000, 5_001, 5_002])).toEqual([true, true, true, true, true, true]);
  });

  it('keeps the new restart time as the newest entry of the window', () => {
    const d = recordRestart(p, [0, 10], 20);
    expect(d.window).toEqual([0, 10, 20]);
  });

  it('drops times older than now - withinMs from the window', () => {
    const d = recordRestart(p, [0, 500, 900], 1_600);
    expect(d.window).toEqual([900, 1_600]);
  });

  it('does not change the window it was given (a pure decision)', () => {
    const before: RestartWindow = Object.freeze([0, 10, 20]);
    recordRestart(p, before, 30);
    expect(before).toEqual([0, 10, 20]);
  });
});

describe('recordRestart at other limits', () => {
  it('escalates on the very first restart with maxRestarts 0', () => {
    const p = intensity({ maxRestarts: 0 }, DEFAULTS);
    expect(decide(p, [0])).toEqual([false]);
    expect(decide(p, [1e9])).toEqual([false]);
  });

  it('allows one restart and escalates on a second within the window with maxRestarts 1', () => {
    const p = intensity({ maxRestarts: 1, withinMs: 100 }, DEFAULTS);
    expect(decide(p, [0, 100])).toEqual([true, false]);
  });

  it('never escalates restarts spaced just over withinMs apart with maxRestarts 1', () => {
    const p = intensity({ maxRestarts: 1, withinMs: 100 }, DEFAULTS);
    const times = Array.from({ length: 50 }, (_, i) => i * 101);
    expect(decide(p, times).every(Boolean)).toBe(true);
  });

  it('uses the defaults it is given for options left out', () => {
    expect(intensity({}, DEFAULTS)).toEqual({ maxRestarts: 10, withinMs: 60_000 });
    expect(intensity({ withinMs: 5 }, DEFAULTS)).toEqual({ maxRestarts: 10, withinMs: 5 });
  });

  it('returns a frozen policy', () => {
    expect(Object.isFrozen(intensity({}, DEFAULTS))).toBe(true);
  });
});

describe('the restart window', () => {
  it('never holds more than maxRestarts + 1 times, however many restarts come in a burst', () => {
    for (const maxRestarts of [0, 1, 3, 10]) {
      const p = intensity({ maxRestarts, withinMs: 1_000_000 }, DEFAULTS);
      let window: RestartWindow = [];
      for (let t = 0; t < 500; t++) {
        window = recordRestart(p, window, t).window;
        expect(window.length).toBeLessThanOrEqual(maxRestarts + 1);
      }
    }
  });

  it('never holds more than maxRestarts + 1 times and agrees with a naive count over all restarts (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 60 }),
        (maxRestarts, withinMs, gaps) => {
          const p = intensity({ maxRestarts, withinMs }, DEFAULTS);
          let window: RestartWindow = [];
          const all: number[] = [];
          let now = 0;
          for (const gap of gaps) {
            now += gap;
            all.push(now);
            const d = recordRestart(p, window, now);
            window = d.window;
            expect(window.length).toBeLessThanOrEqual(maxRestarts + 1);
            const inWindow = all.filter((t) => t >= now - withinMs).length;
            expect(d.restart).toBe(inWindow <= maxRestarts);
          }
        },
      ),
    );
  });
});

describe('intensity() validation', () => {
  it.each([
    ['maxRestarts', '-1', { maxRestarts: -1 }],
    ['maxRestarts', '1.5', { maxRestarts: 1.5 }],
    ['maxRestarts', 'NaN', { maxRestarts: Number.NaN }],
    ['maxRestarts', 'Infinity', { maxRestarts: Infinity }],
    ['withinMs', '0', { withinMs: 0 }],
    ['withinMs', '-5', { withinMs: -5 }],
    ['withinMs', 'Infinity', { withinMs: Infinity }],
    ['withinMs', 'NaN', { withinMs: Number.NaN }],
  ] as const)("refuses %s %s with ERR_INVALID_OPTION naming 'restart.<option>'", (option, _label, options) => {
    expectBatonError(() => intensity(options, DEFAULTS), 'ERR_INVALID_OPTION', `restart.${option}`);
  });

  it('names the option under the path it is given', () => {
    expectBatonError(() => intensity({ maxRestarts: -2 }, DEFAULTS, 'stages.parse.restart'), 'ERR_INVALID_OPTION', 'stages.parse.restart.maxRestarts');
  });
});
