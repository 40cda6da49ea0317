import { expect, it } from 'vitest';
import { runStorm } from './run.js';

// The example end to end, over real HTTP on loopback: a 2 s storm of 429s (every other call, Retry-After 1 s).
it('rides out a 429 storm: nothing dead-lettered, no attempt charged, at most 1.2x as many calls as tasks', async () => {
  const r = await runStorm(120, { stormMs: 2_000 });
  expect(r.completed).toBe(120);
  expect(r.deadLettered).toBe(0);
  expect(r.chargedAttempts).toBe(0);
  expect(r.refused).toBeGreaterThan(0); // the storm did happen
  expect(r.calls).toBeLessThanOrEqual(1.2 * 120);
}, 30_000);
