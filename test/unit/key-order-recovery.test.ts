import { describe, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal } from '../../system/index.js';
import { killableJournal } from '../../testkit/index.js';

// Issue 12, item 12: per-key order across a restart broke when only a downstream stage ordered by key:
// the unordered upstream stage paged its recovered backlog in behind new sends, so a task sent after
// the restart overtook older tasks with its key.
describe('a pipeline whose downstream stage orders by key, restarted on its journal', () => {
  it('keeps accepted order per key: the recovered backlog goes before anything sent after the restart', async () => {
    const journal = memoryJournal();
    const killable = killableJournal(journal);
    const first = createSystem({ logger: false, journal: killable });
    const stuck = first.spawnPipeline<string, string>({
      name: 'p',
      stages: [agent({ name: 'prep', handle: () => new Promise<string>(() => undefined) }), agent({ name: 'write', handle: (x: string) => x, orderByKey: true })],
    });
    for (const id of ['t1', 't2', 't3']) await stuck.send(id, { id, key: 'k' });
    killable.kill(); // the process dies with t1..t3 pending at 'prep'

    const seen: string[] = [];
    const second = createSystem({ logger: false, journal });
    const pipe = second.spawnPipeline<string, string>({
      name: 'p',
      stages: [agent({ name: 'prep', handle: (x: string) => x }), agent({ name: 'write', handle: (x: string) => (seen.push(x), x), orderByKey: true })],
    });
    await pipe.send('t4', { id: 't4', key: 'k' }); // sent right after the restart
    await pipe.drain();
    expect(seen).toEqual(['t1', 't2', 't3', 't4']);
    await second.shutdown();
  });
});
