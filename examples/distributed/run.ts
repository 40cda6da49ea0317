// The distributed demo: a local nats-server, three worker processes (ingest; analyse; analyse and
// validate: two processes share 'analyse'), and this process sending the batch and reading outcomes.
// Midway one analyse worker is killed with SIGKILL and a new one started: nothing is lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSystem, natsJetStream, type Outcome } from '../../system/index.js';
import { startNatsServer } from '../../testkit/index.js';
import { docId, makeDocument } from '../legal-pipeline/documents.js';
import { legalStages } from './stages.js';

const WORKER = new URL('./worker.ts', import.meta.url).pathname;

function worker(url: string, hosted: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, url, hosted], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve(child));
    child.once('exit', (code, signal) => reject(new Error(`worker '${hosted}' ended (${code ?? signal}) before it joined`)));
  });
}

export interface DistributedSummary {
  readonly documents: number;
  readonly completed: number;
  readonly deadLettered: number;
  readonly corrupt: number;
  readonly deadNotCorrupt: string[];
  readonly missing: number;
  readonly seconds: number;
  readonly checks: { readonly name: string; readonly ok: boolean }[];
}

export async function runDistributed(documents: number, seed = 42, log: (line: string) => void = () => undefined): Promise<DistributedSummary> {
  const server = await startNatsServer();
  const workers: ChildProcess[] = [];
  try {
    const roles = ['ingest', 'analyse', 'analyse,validate'];
    for (const r of roles) workers.push(await worker(server.url, r));
    log(`nats-server at ${server.url}; workers: ${roles.map((r, i) => `#${i + 1} ${r} (pid ${workers[i]!.pid})`).join(', ')}`);
    const system = createSystem({ logger: false, journal: await natsJetStream({ servers: server.url }) });
    const pipe = await system.joinPipeline<string, { id: string }>({ name: 'legal-dist', stages: legalStages(), host: [], ackWaitMs: 3_000 });
    const outcomes = new Map<string, Outcome<{ id: string }>>();
    let repeats = 0;
    pipe.onOutcome((o) => (outcomes.has(o.id) ? repeats++ : outcomes.set(o.id, o)));
    const corrupt = new Set<string>();
    const t0 = Date.now();
    for (let i = 0; i < documents; i++) {
      const doc = makeDocument(seed, i);
      if (doc.corruption !== null) corrupt.add(docId(i));
      await pipe.send(doc.pdf, { id: docId(i) });
      if (i === Math.floor(documents * 0.4)) {
        // A machine dies: the analyse worker that also validates is SIGKILLed, and a new one joins.
        workers[2]!.kill('SIGKILL');
        log(`killed worker #3 (pid ${workers[2]!.pid}) with SIGKILL after ${i + 1} documents were sent`);
        workers[2] = await worker(server.url, roles[2]!);
        log(`worker #3 restarted (pid ${workers[2]!.pid})`);
      }
    }
    log(`sent ${documents} documents in ${((Date.now() - t0) / 1000).toFixed(1)} s; waiting for their outcomes`);
    await pipe.drain();
    const seconds = (Date.now() - t0) / 1000;
    await system.shutdown();
    const all = [...outcomes.values()];
    const dead = all.filter((o) => o.status === 'dead-lettered');
    const deadNotCorrupt = dead.filter((o) => !corrupt.has(o.id)).map((o) => o.id);
    const missing = documents - outcomes.size;
    const checks = [
      { name: 'every document has exactly one outcome', ok: missing === 0 && repeats === 0 },
      { name: 'every corrupt document is dead-lettered at ingest', ok: [...corrupt].every((id) => outcomes.get(id)?.status === 'dead-lettered' && outcomes.get(id)?.stage === 'ingest') },
      { name: 'no healthy document is dead-lettered', ok: deadNotCorrupt.length === 0 },
      { name: 'every completed document went through all three stages', ok: all.filter((o) => o.status === 'completed').every((o) => o.stage === 'validate') },
    ];
    return { documents, completed: all.length - dead.length, deadLettered: dead.length, corrupt: corrupt.size, deadNotCorrupt, missing, seconds, checks };
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    for (const w of workers) w.kill('SIGKILL');
    await server.stop();
  }
}
