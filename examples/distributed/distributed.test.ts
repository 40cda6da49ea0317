import { describe, expect, it } from 'vitest';
import { natsMissing, warnNatsMissing } from '../../testkit/index.js';
import { runDistributed } from './run.js';

warnNatsMissing();

describe.skipIf(natsMissing !== '')('the distributed demo', () => {
  it('passes its checks over three worker processes with one SIGKILLed midway', async () => {
    const s = await runDistributed(800);
    expect(s.checks.filter((c) => !c.ok)).toEqual([]);
    expect(s.completed + s.deadLettered).toBe(800);
    expect(s.corrupt).toBeGreaterThan(0);
  }, 120_000);
});
