import { parseArgs } from 'node:util';
import { isBatonError, type ActorSystem } from '../../system/index.js';
import { BatchMismatchError } from './batch.js';
import { formatSummary, progressLine, progressTable, startLine } from './report.js';
import { DEFAULT_DB, runDemo, type Progress, type StartInfo } from './run.js';

const USAGE = `usage: npm run demo -- [--docs N] [--seed S] [--corrupt-rate R] [--db PATH | --memory] [--json] [--quiet] [--observe]
  --docs N          documents in the batch (default 50000)
  --seed S          seeds documents, faults and jitter (default 42)
  --corrupt-rate R  share of corrupt documents, 0..1 (default 0.032)
  --db PATH         the SQLite journal (default .baton/legal-demo.db); a run starts a new batch there,
                    or resumes the one a crashed run left unfinished
  --memory          no journal: accepted tasks live in memory only
  --crash-at P      kill this process with SIGKILL once P of the documents are stored (40% or a count);
                    run the same command again and it resumes the batch from the journal
  --json            print only the summary, as one JSON object on stdout (run it as npm run -s demo -- --json:
                    without -s, npm prints its own banner on stdout first)
  --quiet           no live progress
  --observe         serve the live page while it runs (its address is printed on stderr)
exit code: 0 if every check passes, 1 if one fails, 2 on bad flags or a journal holding another batch`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

/** Plain decimal numbers only: Number() would also take '0x10', '1e3', ' 7' and ''. */
const DECIMAL = /^-?(\d+(\.\d+)?|\.\d+)$/;

function number(flag: string, raw: string | undefined, fallback: number, ok: (x: number) => boolean, expected: string): number {
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (!DECIMAL.test(raw) || !ok(x)) fail(`--${flag} must be ${expected}; got '${raw}'.`);
  return x;
}

// `--docs -5` would read as a flag named 5 (node's parseArgs has no allowNegative before Node 22.4):
// a value that looks like a negative number is joined to its flag, so it gets the flag's own error.
const argv = process.argv.slice(2).flatMap((arg, i, all) => (i > 0 && /^--(docs|seed|corrupt-rate|crash-at)$/.test(all[i - 1]!) && /^-\d/.test(arg) ? [] : [/^--(docs|seed|corrupt-rate|crash-at)$/.test(arg) && /^-\d/.test(all[i + 1] ?? '') ? `${arg}=${all[i + 1]}` : arg]));

let args;
try {
  args = parseArgs({
    args: argv,
    options: {
      docs: { type: 'string' },
      seed: { type: 'string' },
      'corrupt-rate': { type: 'string' },
      memory: { type: 'boolean' },
      db: { type: 'string' },
      'crash-at': { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
      observe: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (args.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const docs = number('docs', args.docs, 50_000, (x) => Number.isInteger(x) && x >= 1, 'a whole number >= 1');
const seed = number('seed', args.seed, 42, (x) => Number.isInteger(x), 'a whole number');
const corruptRate = number('corrupt-rate', args['corrupt-rate'], 0.032, (x) => x >= 0 && x <= 1, 'a number between 0 and 1');
const json = args.json === true;
const quiet = args.quiet === true || json;
const tty = process.stdout.isTTY === true;

if (args.memory === true && args.db !== undefined) fail('--memory and --db exclude each other.');
const db = args.memory === true ? false : (args.db ?? DEFAULT_DB);
const quietFlag = args.quiet === true;
/** Where the run stands before it starts; with --json on stderr (stdout holds only the summary). */
function showStart(s: StartInfo): void {
  if (!json) process.stdout.write(`${startLine(s)}\n`);
  else if (!quietFlag) process.stderr.write(`${startLine(s)}\n`);
}

let drawn = 0;
let lastLine = 0;
function showProgress(p: Progress): void {
  if (tty) {
    const lines = progressTable(p);
    // Redraw in place: up to the first line of the last frame, then clear each line as it is rewritten.
    const up = drawn > 0 ? `\x1b[${drawn}F` : '';
    process.stdout.write(up + lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
    drawn = lines.length;
  } else if (p.elapsedMs - lastLine >= 1_000) {
    lastLine = p.elapsedMs;
    process.stdout.write(`${progressLine(p)}\n`);
  }
}

const crashRaw = args['crash-at'];
let crashAt: number | undefined;
if (crashRaw !== undefined) {
  if (db === false) fail('--crash-at needs the journal: drop --memory.');
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(crashRaw);
  crashAt = pct ? Math.floor((Number(pct[1]) / 100) * docs) : Number(crashRaw);
  if (!Number.isInteger(crashAt) || crashAt < 1 || crashAt > docs) fail(`--crash-at must be a share such as 40% or a count between 1 and ${docs}; got '${crashRaw}'.`);
}

let summary;
try {
  const onSystem = args.observe === true ? async (system: ActorSystem) => void process.stderr.write(`live page: ${(await system.observe()).url}\n`) : undefined;
  summary = await runDemo({ docs, seed, corruptRate, db, onStart: showStart, ...(onSystem ? { onSystem } : {}), ...(crashAt === undefined ? {} : { crashAt }), ...(quiet ? {} : { onProgress: showProgress }) });
} catch (err) {
  // Another batch's unfinished journal, or a file at --db that is not a Baton journal (left untouched).
  if (!(err instanceof BatchMismatchError || isBatonError(err))) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
else process.stdout.write(`\n${formatSummary(summary)}\n`);
process.exitCode = summary.ok ? 0 : 1;
