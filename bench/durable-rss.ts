// Child process of bench/durable.ts: sends N tasks through a durable 5-stage pipeline and prints peak RSS in MiB.
import { agent, createSystem, sqliteJournal } from '../system/index.js';

const [nArg, path] = process.argv.slice(2);
const n = Number(nArg);
const system = createSystem({ logger: false, journal: sqliteJournal(path!) });
const stages = [1, 2, 3, 4, 5].map((i) => agent({ name: `s${i}`, handle: (x: { doc: number; text: string }) => ({ doc: x.doc, text: x.text }) }));
const pipe = system.spawnPipeline({ name: 'rss', stages, defaults: { mailbox: { capacity: 1024 } } });
function* inputs() {
  for (let i = 0; i < n; i++) yield { doc: i, text: 'lorem ipsum dolor sit amet' };
}
await pipe.sendMany(inputs());
await pipe.drain();
await system.shutdown();
process.stdout.write(`${(process.resourceUsage().maxRSS / 1024).toFixed(1)}\n`);
if (process.env.RSS_DEBUG) {
  (globalThis as { gc?: () => void }).gc?.();
  process.stderr.write(`heapUsed after gc ${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} MiB\n`);
}
