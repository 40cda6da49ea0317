// npm run demo:threads [-- --docs N --threads N]: a CPU-bound stage (about 2 ms of hashing per
// document) in the pipeline's own thread, then on worker threads, with two runaway documents sent
// to the threaded run: one loops forever, one hoards memory. Both are ended with their worker and
// dead-lettered; everything else completes, and the throughput scales with the cores.
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { runThreads, type ThreadsRun } from './run.js';

const USAGE = 'usage: npm run demo:threads -- [--docs N] [--threads N]  (defaults: 2,000 documents; as many threads as cores)';
let values;
try {
  values = parseArgs({ options: { docs: { type: 'string' }, threads: { type: 'string' } } }).values;
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
const whole = (raw: string | undefined, fallback: number, min: number, flag: string): number => {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) {
    process.stderr.write(`--${flag} must be a whole number >= ${min}; got '${raw}'.\n${USAGE}\n`);
    process.exit(2);
  }
  return Number(raw);
};
const docs = whole(values.docs, 2_000, 20, 'docs');
const threads = whole(values.threads, availableParallelism(), 1, 'threads');

const line = (r: ThreadsRun): string =>
  `${(r.threads === 0 ? 'in-process' : `${r.threads} thread${r.threads > 1 ? 's' : ''}${r.runaways ? ' + 2 runaways' : ''}`).padEnd(22)} ${r.docsPerSec.toFixed(0).padStart(6)} docs/s   ${r.completed} completed, ${r.deadLettered.length} dead-lettered${r.deadLettered.length ? ` (${r.deadLettered.map((d) => `${d.id}: ${d.code}`).join(', ')})` : ''}`;

const inline = await runThreads(docs, 0);
process.stdout.write(`${line(inline)}\n`);
const threaded = await runThreads(docs, threads);
process.stdout.write(`${line(threaded)}   x${(threaded.docsPerSec / inline.docsPerSec).toFixed(2)}\n`);
const wild = await runThreads(docs, threads, true);
process.stdout.write(`${line(wild)}\n`);
const codes = Object.fromEntries(wild.deadLettered.map((d) => [d.id, d.code]));
const checks: [string, boolean][] = [
  ['the endless loop (doc-7) ended with its worker: ERR_TIMEOUT', codes['doc-7'] === 'ERR_TIMEOUT'],
  ['the memory hoarder (doc-11) died alone in its 64 MB heap: ERR_WORKER_MEMORY', codes['doc-11'] === 'ERR_WORKER_MEMORY'],
  ['every other document completed, with the output of the in-process run', wild.completed === docs - 2 && wild.wrong === 0 && threaded.completed === docs && threaded.wrong === 0 && inline.completed === docs],
];
for (const [name, ok] of checks) process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${name}\n`);
if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
