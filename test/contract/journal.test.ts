import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal, sqliteJournal, type Journal } from '../../system/index.js';
import { asyncJournal } from '../support/async-journal.js';
import { journalContract } from './journal-contract.js';

// Every journal backend passes the same contract (journal-contract.ts): memory and SQLite, and each
// of them behind an asynchronous wrapper whose commits and pages answer a turn later, as a remote
// journal (NATS JetStream) does, so the runtime's asynchronous paths meet the same semantics.
const dir = mkdtempSync(join(tmpdir(), 'baton-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const paths = new WeakMap<Journal, string>();
const sqliteAt = (path: string): Journal => {
  const journal = sqliteJournal(path);
  paths.set(journal, path);
  return journal;
};
const freshSqlite = (): Journal => sqliteAt(join(dir, `j${n++}.db`));
// A new process opens the same file; the old handle is closed first, as the dead process's would be.
const reopenSqlite = (journal: Journal): Journal => {
  const path = paths.get(journal)!;
  journal.close();
  return sqliteAt(path);
};
const wrapped = new WeakMap<Journal, Journal>();
const asyncOver = (inner: Journal): Journal => {
  const journal = asyncJournal(inner);
  wrapped.set(journal, inner);
  return journal;
};

journalContract({ name: 'memory', make: () => memoryJournal() });
journalContract({ name: 'SQLite', make: freshSqlite, reopen: reopenSqlite });
journalContract({ name: 'memory behind an asynchronous port', make: () => asyncOver(memoryJournal()), reopen: (j) => asyncOver(wrapped.get(j)!) });
journalContract({ name: 'SQLite behind an asynchronous port', make: () => asyncOver(freshSqlite()), reopen: (j) => asyncOver(reopenSqlite(wrapped.get(j)!)) });

it('keeps at most one commit in flight on an asynchronous journal, grouping what arrives meanwhile', async () => {
  const journal = asyncJournal(memoryJournal());
  const system = createSystem({ logger: false, journal });
  const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 'a', handle: async (x: number) => x }), agent({ name: 'b', handle: (x: number) => x })] });
  const sends = Array.from({ length: 200 }, (_, i) => pipe.send(i));
  await Promise.all(sends);
  await pipe.drain();
  expect(journal.maxInFlight).toBe(1);
  expect(journal.openPipeline('p').counts()).toEqual({ pending: 0, completed: 200, dead: 0 });
  await system.shutdown();
});
