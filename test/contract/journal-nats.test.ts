import { afterAll, beforeAll, describe } from 'vitest';
import { natsJetStream, type Journal } from '../../system/index.js';
import { natsMissing, startNatsServer, warnNatsMissing, type NatsServer } from '../../testkit/nats-server.js';

warnNatsMissing();
import { journalContract } from './journal-contract.js';

// The journal contract over NATS JetStream: a real nats-server on a loopback port with a temporary
// store, a fresh bucket per journal, and "a new process" as a second journal on the same bucket.
describe.skipIf(natsMissing !== '')('the NATS JetStream journal', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  let n = 0;
  const buckets = new WeakMap<Journal, string>();
  const open = async (bucket: string): Promise<Journal> => {
    const journal = await natsJetStream({ servers: server.url, bucket });
    buckets.set(journal, bucket);
    return journal;
  };
  journalContract({
    name: 'NATS JetStream',
    make: () => open(`contract${n++}`),
    // The old process is gone: its connection closes after its writes in flight are answered.
    reopen: async (journal) => {
      await journal.close();
      return open(buckets.get(journal)!);
    },
  });
});
