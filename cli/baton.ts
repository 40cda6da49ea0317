import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BatonError, cancelStoredTask, decodeOutcome, distributedPipelines, distributedStreams, natsJetStream, sqliteJournal, type Journal, type NatsJournal, type Outcome, type SyncPipelineJournal } from '../system/index.js';
import { table } from './table.js';
import { top } from './top.js';

const USAGE = `usage: baton <command> --db PATH [options]   (top: --url URL or --db PATH)

commands:
  status                          tasks per pipeline: pending (per stage, in pipeline order), completed, dead letters
                                  (--url URL: a running system's snapshot, as top prints it once; --json: the snapshot)
  dead-letters --pipeline NAME    the dead letters of a pipeline, oldest first [--limit N (50)] [--offset N (0)]
  replay --pipeline NAME ID...    send dead letters back to the stage that failed them [--all]
                                  (a running pipeline picks them up at its next start)
  cancel --pipeline NAME ID...    end pending tasks as dead letters with ERR_CANCELLED [--reason TEXT]
                                  (a running system cancels with pipeline.cancel(id) instead)
  top --url URL | --db PATH       the tree with live counts, refreshed until Ctrl-C [--interval MS (1000)] [--once]
                                  --url: a running system's live page (the address system.observe() printed);
                                  --db: what the journal holds (pending per stage, completed, dead letters)

a NATS journal instead of a SQLite file: --nats URL [--bucket NAME ('baton')] for status, dead-letters and top
(read-only; replay and cancel go through the running system there). A pipeline spread over processes
(joinPipeline) keeps its dead letters in streams: status lists it, dead-letters reads them, and replay
sends them back to their stages (any process may: its running processes pick them up).

options:
  --json                          machine-readable output (camelCase keys, ISO times) on every command
  --version, -h/--help

status and dead-letters only read the journal (they change no file and work while a system runs);
replay and cancel write it, so they wait for the system on that journal to stop (one writer per journal file).
`;

/** Exit codes: 0 done, 1 the journal or its contents said no, 2 the command line is wrong. */
const USAGE_ERROR = 2;
const REFUSED = 1;

class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The operator's CLI over a SQLite journal (and, for `top`, a running system's live page). Returns the
 * exit code (a promise of it for `top`, which runs until stopped); writes to the given streams.
 * `stopped`: resolves when `top` must end (the bin passes SIGINT; tests their own).
 */
export function main(argv: readonly string[], out: (s: string) => void, err: (s: string) => void, io: { tty?: boolean; stopped?: Promise<void> } = {}): number | Promise<number> {
  try {
    return run(argv, out, err, io);
  } catch (e) {
    return failed(e, err);
  }
}

function failed(e: unknown, err: (s: string) => void): number {
  if (e instanceof CliError) {
    err(`${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof BatonError) {
    err(`${e.code}: ${e.message}\n`);
    return REFUSED;
  }
  // A fault of the CLI itself: a message and an exit code, not a stack trace over the operator's shell.
  err(`baton: unexpected error: ${(e as Error)?.message ?? String(e)}\n`);
  return REFUSED;
}

function run(argv: readonly string[], out: (s: string) => void, err: (s: string) => void, io: { tty?: boolean; stopped?: Promise<void> }): number | Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        db: { type: 'string' },
        pipeline: { type: 'string' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        all: { type: 'boolean' },
        reason: { type: 'string' },
        url: { type: 'string' },
        nats: { type: 'string' },
        bucket: { type: 'string' },
        interval: { type: 'string' },
        once: { type: 'boolean' },
        json: { type: 'boolean' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new CliError(USAGE_ERROR, `${(e as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, ...ids] = positionals;
  if (values.version) {
    out(`baton ${version()}\n`);
    return 0;
  }
  if (values.help || command === undefined) {
    (values.help ? out : err)(USAGE);
    return values.help ? 0 : USAGE_ERROR;
  }
  if (!['status', 'dead-letters', 'replay', 'cancel', 'top'].includes(command)) throw new CliError(USAGE_ERROR, `baton: unknown command '${command}'.\n${USAGE}`);
  if (values.nats !== undefined && values.db !== undefined) throw new CliError(USAGE_ERROR, `baton ${command}: give --db PATH (a SQLite journal) or --nats URL (a NATS journal), not both.`);
  if (values.bucket !== undefined && values.nats === undefined) throw new CliError(USAGE_ERROR, `baton ${command}: --bucket goes with --nats URL.`);
  if (command === 'top') return topCommand(values, out, err, io);
  // status of a running system: its live page's snapshot (the tree, as top shows it once; --json: the snapshot).
  if (command === 'status' && values.url !== undefined) return topCommand({ ...values, once: true }, out, err, io);
  if (command === 'replay' && !values.all && ids.length === 0) throw new CliError(USAGE_ERROR, 'baton replay: name the dead letters to replay (ids), or pass --all.');
  if (command === 'cancel' && ids.length === 0) throw new CliError(USAGE_ERROR, 'baton cancel: name the pending tasks to cancel (ids).');
  // Checked before the journal is opened: a bad option must not wait for, or touch, the file.
  const limit = wholeNumber(command, '--limit', values.limit, 50, 1);
  const offset = wholeNumber(command, '--offset', values.offset, 0, 0);
  const writes = command === 'replay' || command === 'cancel';
  if (values.nats !== undefined) {
    // A running system keeps its NATS journal in memory and writes it with conditional updates: a
    // second writer would make its writes fail. Replay and cancel go through the system instead.
    const where = `NATS ${values.nats} bucket '${values.bucket ?? 'baton'}'`;
    return openNats(values.nats, values.bucket).then(async (journal) => {
      try {
        // A distributed pipeline (its streams on the server) is read, and replayed, through its streams.
        const streams = values.pipeline !== undefined && !journal.pipelines().includes(values.pipeline) ? await distributedStreams(journal, values.pipeline) : undefined;
        if (streams !== undefined && command !== 'status' && command !== 'cancel') return await onStreams(streams, command, ids, { ...values, limit, offset }, out, err);
        if (writes) throw new CliError(USAGE_ERROR, `baton ${command} --nats: a NATS journal is written only by its running system; use pipeline.${command === 'replay' ? 'replay(ids)' : 'cancel(id)'} there (or the live page). status, dead-letters and top read it; replay works on a pipeline spread over processes (joinPipeline).`);
        const code = commandOn(journal, where, command, ids, { ...values, limit, offset }, out, err);
        if (command === 'status' && !values.json) await distributedStatus(journal, out);
        return code;
      } finally {
        await journal.close();
      }
    }).catch((e: unknown) => failed(e, err));
  }
  const db = values.db;
  if (db === undefined) throw new CliError(USAGE_ERROR, `baton ${command}: --db PATH is required (the SQLite file given to sqliteJournal), or --nats URL for a NATS journal.`);
  // An operator's typo must not create an empty journal and report it empty.
  if (!existsSync(db)) throw new CliError(REFUSED, `baton ${command}: no journal at '${db}'; give the path passed to sqliteJournal().`);

  // Reads open the journal read-only: no lock (they work beside a running system) and no file changed.
  const journal = sqliteJournal(db, { readonly: !writes });
  try {
    return readingJournal(db, () => commandOn(journal, `'${db}'`, command, ids, { ...values, limit, offset }, out, err));
  } finally {
    journal.close();
  }
}

/** dead-letters and replay on a distributed pipeline's streams (see DistributedStreams). */
async function onStreams(
  streams: NonNullable<Awaited<ReturnType<typeof distributedStreams>>>,
  command: string,
  ids: readonly string[],
  values: { all?: boolean | undefined; json?: boolean | undefined; limit: number; offset: number },
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const name = streams.pipeline;
  const show = (json: unknown, text: () => string): void => out(values.json ? JSON.stringify(json) + '\n' : text() + '\n');
  if (command === 'dead-letters') {
    const all = await streams.deadLetters();
    const rows = all.slice(values.offset, values.offset + values.limit).map((o: Outcome) => ({
      id: o.id,
      ...(o.key !== undefined ? { key: o.key } : {}),
      stage: o.stage,
      attempts: o.attempts,
      code: o.status === 'dead-lettered' ? o.error.code : undefined,
      lastError: o.errors[o.errors.length - 1]?.error.message ?? (o.status === 'dead-lettered' ? o.error.message : undefined),
      errors: o.errors.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    }));
    show(rows, () => (rows.length === 0 ? `pipeline '${name}' has no dead letters${values.offset > 0 ? ` from offset ${values.offset}` : ''}` : table(rows.map((r) => ({ ...r, 'last error': r.lastError })), ['id', 'stage', 'attempts', 'code', 'last error'])));
    if (all.length > values.offset + values.limit) err(`baton dead-letters: showing ${rows.length} dead letters from offset ${values.offset}; there are more: --offset ${values.offset + rows.length}\n`);
    return 0;
  }
  const targets = values.all ? 'all' : [...new Set(ids)];
  const replayed = await streams.replay(targets);
  const done = new Set(replayed);
  const others = targets === 'all' ? [] : targets.filter((id) => !done.has(id));
  show({ pipeline: name, replayed, notDeadLetters: others }, () => `replayed ${replayed.length} of ${targets === 'all' ? replayed.length : targets.length} in pipeline '${name}'${others.length > 0 ? ' (the others are not dead letters there)' : ''}; its running processes pick them up`);
  return 0;
}

/** The distributed pipelines on the journal's server, after the journal's own status table. */
async function distributedStatus(journal: NatsJournal, out: (s: string) => void): Promise<void> {
  const names = await distributedPipelines(journal);
  if (names.length === 0) return;
  const rows: Record<string, unknown>[] = [];
  for (const name of names) {
    const s = await distributedStreams(journal, name);
    if (s !== undefined) rows.push({ 'spread over processes': name, 'waiting at stages': await s.pendingWork(), dead: (await s.deadLetters()).length });
  }
  out(table(rows, ['spread over processes', 'waiting at stages', 'dead']) + '\n');
}

/** Opens a NATS journal read-only (it must exist; nothing on the server changes). */
async function openNats(servers: string, bucket: string | undefined): Promise<NatsJournal> {
  return natsJetStream({ servers, ...(bucket === undefined ? {} : { bucket }), readonly: true, timeoutMs: 10_000, connectOptions: { maxReconnectAttempts: 0, reconnect: false } });
}

/** Runs `command` on an open journal (`where` names it in messages). */
function commandOn(
  journal: Journal,
  where: string,
  command: string,
  ids: readonly string[],
  values: { pipeline?: string | undefined; all?: boolean | undefined; reason?: string | undefined; json?: boolean | undefined; limit: number; offset: number },
  out: (s: string) => void,
  err: (s: string) => void,
): number {
  const { limit, offset } = values;
  {
    const pipelineOf = (): string => {
      const all = journal.pipelines();
      if (values.pipeline !== undefined) {
        if (all.includes(values.pipeline)) return values.pipeline;
        throw new CliError(REFUSED, `baton ${command}: no pipeline '${values.pipeline}' in ${where}; it holds ${holds(all)}.`);
      }
      if (all.length === 1) return all[0]!;
      throw new CliError(USAGE_ERROR, `baton ${command}: --pipeline NAME is required; ${where} holds ${holds(all)}.`);
    };
    const show = (json: unknown, text: () => string): void => out(values.json ? JSON.stringify(json) + '\n' : text() + '\n');
    return (() => {
      switch (command) {
        case 'status': {
          const rows = status(journal);
          show(rows, () =>
            rows.length === 0
              ? 'the journal holds no tasks'
              : table(
                  rows.map((r) => ({ ...r, 'pending by stage': r.pendingByStage.map((s) => `${s.stage}:${s.count}`).join(' ') })),
                  ['pipeline', 'pending', 'completed', 'dead', 'pending by stage'],
                  80,
                ),
          );
          return 0;
        }
        case 'dead-letters': {
          const name = pipelineOf();
          // One more than asked for: that is how the listing knows it stopped at the limit.
          const page = journal.openPipeline(name).deadLetters(limit + 1, offset);
          const more = page.length > limit;
          const rows = page.slice(0, limit).map(deadLetterRow);
          show(rows, () =>
            rows.length === 0
              ? `pipeline '${name}' has no dead letters${offset > 0 ? ` from offset ${offset}` : ''}`
              : table(rows.map((r) => ({ ...r, 'last error': r.lastError, finished: r.finishedAt })), ['id', 'stage', 'attempts', 'code', 'last error', 'finished']),
          );
          if (more) err(`baton dead-letters: showing ${rows.length} dead letters from offset ${offset}; there are more: --offset ${offset + rows.length}\n`);
          return 0;
        }
        case 'cancel': {
          const name = pipelineOf();
          // Writes reach only a SQLite journal (a NATS one is refused above), whose port is synchronous.
          const pj = journal.openPipeline(name) as SyncPipelineJournal;
          const reason = values.reason ?? 'cancelled by an operator (baton cancel)';
          const targets = [...new Set(ids)];
          const cancelled = targets.filter((id) => cancelStoredTask(pj, id, reason, journal.now()));
          const done = new Set(cancelled);
          const others = targets.filter((id) => !done.has(id));
          show(
            { pipeline: name, cancelled, notPending: others },
            () => `cancelled ${cancelled.length} of ${targets.length} in pipeline '${name}'${others.length > 0 ? ' (the others are not pending here)' : ''}; they are dead letters with ERR_CANCELLED`,
          );
          return 0;
        }
        default: {
          const name = pipelineOf();
          const pj = journal.openPipeline(name);
          const targets = [...new Set(values.all ? pj.deadLetters(Number.MAX_SAFE_INTEGER, 0).map((d) => d.id) : ids)];
          const known = targets.filter((id) => pj.status(id) === 'dead');
          const knownSet = new Set(known);
          pj.commit(known.map((id) => ({ op: 'replay' as const, id })));
          const others = targets.filter((id) => !knownSet.has(id));
          show(
            { pipeline: name, replayed: known, notDeadLetters: others },
            () => `replayed ${known.length} of ${targets.length} in pipeline '${name}'${others.length > 0 ? ' (the others are not dead letters here)' : ''}; they run at the pipeline's next start`,
          );
          return 0;
        }
      }
    })();
  }
}

function topCommand(
  values: { url?: string | undefined; db?: string | undefined; nats?: string | undefined; bucket?: string | undefined; interval?: string | undefined; once?: boolean | undefined; json?: boolean | undefined },
  out: (s: string) => void,
  err: (s: string) => void,
  io: { tty?: boolean; stopped?: Promise<void> },
): Promise<number> {
  if ([values.url, values.db, values.nats].filter((v) => v !== undefined).length !== 1) throw new CliError(USAGE_ERROR, 'baton top: give one of --url URL (a running system\'s live page), --db PATH (a journal file) or --nats URL (a NATS journal).');
  const intervalMs = wholeNumber('top', '--interval', values.interval, 1_000, 100);
  let base: string | undefined;
  if (values.url !== undefined) {
    try {
      base = new URL(values.url).origin;
    } catch {
      throw new CliError(USAGE_ERROR, `baton top: --url must be an http URL such as http://127.0.0.1:PORT; got '${values.url}'.`);
    }
    if (!/^https?:/.test(base)) throw new CliError(USAGE_ERROR, `baton top: --url must be an http URL such as http://127.0.0.1:PORT; got '${values.url}'.`);
  }
  const db = values.db;
  if (db !== undefined && !existsSync(db)) throw new CliError(REFUSED, `baton top: no journal at '${db}'; give the path passed to sqliteJournal().`);
  // Read-only and opened afresh for each frame: the running system's commits show, and no lock is held.
  const nats = values.nats;
  const readJournal =
    db !== undefined
      ? () => {
          const journal = sqliteJournal(db, { readonly: true });
          try {
            let rows: ReturnType<typeof status> = [];
            readingJournal(db, () => ((rows = status(journal)), 0));
            return rows;
          } finally {
            journal.close();
          }
        }
      : nats !== undefined
        ? async () => {
            const journal = await openNats(nats, values.bucket);
            try {
              return status(journal);
            } finally {
              await journal.close();
            }
          }
        : undefined;
  const stopped = io.stopped ?? new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  return top({ url: base, readJournal, once: values.once === true, json: values.json === true, intervalMs, tty: io.tty === true, stopped }, out, err).catch((e: unknown) => failed(e, err));
}

function status(journal: Journal) {
  return journal.pipelines().map((pipeline) => {
    const pj = journal.openPipeline(pipeline);
    // The journal lists stages in the order the pipeline first reached them.
    const pendingByStage = [...pj.pendingStages()].map(([stage, v]) => ({ stage, count: v.count }));
    return { pipeline, ...pj.counts(), pendingByStage };
  });
}

function deadLetterRow(d: Parameters<typeof decodeOutcome>[0]) {
  const { errors } = decodeOutcome(d);
  return {
    id: d.id,
    ...(d.key !== undefined ? { key: d.key } : {}),
    stage: d.stage,
    attempts: d.attempts,
    code: d.code,
    lastError: errors[errors.length - 1]?.error.message,
    finishedAt: new Date(d.finishedAt).toISOString(),
    errors: errors.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
  };
}

/**
 * A whole number written in digits only: Number() would also take '', '0x10', '1e20' and ' 3', and
 * parseInt takes '3abc'.
 */
function wholeNumber(command: string, flag: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
    throw new CliError(USAGE_ERROR, `baton ${command}: ${flag} must be a whole number from ${min} to ${Number.MAX_SAFE_INTEGER}, in digits; got '${raw}'.`);
  }
  return n;
}

/**
 * Damage found while reading (a page the open did not touch) comes from SQLite as SQLITE_CORRUPT; the
 * operator gets the same coded answer as for damage found at open.
 */
function readingJournal(db: string, fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
      throw new CliError(REFUSED, `ERR_JOURNAL_CORRUPT: '${db}' is damaged (${(e as Error).message}); restore it from a backup, or move it aside and start with a new journal.`);
    }
    throw e;
  }
}

function holds(pipelines: readonly string[]): string {
  return pipelines.length === 0 ? 'no pipelines' : pipelines.join(', ');
}

/** This package's version: the nearest package.json above this file named 'baton-actors' (a checkout or dist/). */
function version(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const file = join(d, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'baton-actors' && typeof pkg.version === 'string') return pkg.version;
    }
    if (dirname(d) === d) return 'unknown';
  }
}
