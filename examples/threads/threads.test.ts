import { expect, it } from 'vitest';
import { runThreads } from './run.js';

// The example end to end on real worker threads: small, since the suite shares 2 cores.
it('ends the endless loop with ERR_TIMEOUT and the memory hoarder with ERR_WORKER_MEMORY, and completes every other document with the in-process output', async () => {
  const r = await runThreads(60, 2, true);
  expect(Object.fromEntries(r.deadLettered.map((d) => [d.id, d.code]))).toEqual({ 'doc-7': 'ERR_TIMEOUT', 'doc-11': 'ERR_WORKER_MEMORY' });
  expect(r.completed).toBe(58);
  expect(r.wrong).toBe(0);
}, 30_000);
