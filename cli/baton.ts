import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BatonError, decodeOutcome, sqliteJournal } from '../system/index.js';
import { table } from './table.js';

const USAGE = `usage: baton <command> --db PATH [options]

commands:
  status                          tasks per pipeline: pending (per stage), completed, dead letters
  dead-letters --pipeline NAME    the dead letters of a pipeline, oldest first [--limit N] [--offset N] [--json]
  replay --pipeline NAME ID...    send dead letters back to the stage that failed them [--all]
                                  (a running pipeline picks them up at its next start)
`;

/** The operator's CLI over a SQLite journal. Returns the exit code; writes to the given streams. */
export function main(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
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
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...ids] = positionals;
  if (values.help || command === undefined) {
    (values.help ? out : err)(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.db === undefined) {
    err(`baton ${command}: --db PATH is required (the SQLite file given to sqliteJournal).\n`);
    return 2;
  }
  if (!['status', 'dead-letters', 'replay'].includes(command)) {
    err(`baton: unknown command '${command}'.\n${USAGE}`);
    return 2;
  }
  if (command === 'replay' && !values.all && ids.length === 0) {
    err('baton replay: name the dead letters to replay (ids), or pass --all.\n');
    return 2;
  }
  // An operator's typo must not create an empty journal and report it empty.
  if (!existsSync(values.db)) {
    err(`baton ${command}: no journal at '${values.db}'; give the path passed to sqliteJournal().\n`);
    return 1;
  }
  let journal;
  try {
    journal = sqliteJournal(values.db);
  } catch (e) {
    err(`${e instanceof BatonError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
  try {
    const pipelineOf = (): string | undefined => {
      if (values.pipeline !== undefined) return values.pipeline;
      const all = journal.pipelines();
      if (all.length === 1) return all[0];
      err(`baton ${command}: --pipeline NAME is required; this journal holds ${all.length === 0 ? 'no pipelines' : all.join(', ')}.\n`);
      return undefined;
    };
    switch (command) {
      case 'status': {
        const rows = journal.pipelines().map((name) => {
          const pj = journal.openPipeline(name);
          const stages = [...pj.pendingStages()].map(([s, v]) => `${s}:${v.count}`).join(' ');
          return { pipeline: name, ...pj.counts(), 'pending by stage': stages };
        });
        out(rows.length === 0 ? 'the journal holds no tasks\n' : table(rows, ['pipeline', 'pending', 'completed', 'dead', 'pending by stage'], 80) + '\n');
        return 0;
      }
      case 'dead-letters': {
        const name = pipelineOf();
        if (name === undefined) return 2;
        const limit = Number(values.limit ?? 50);
        const offset = Number(values.offset ?? 0);
        for (const [flag, v] of [['--limit', limit], ['--offset', offset]] as const) {
          if (!Number.isInteger(v) || v < 0) {
            err(`baton dead-letters: ${flag} must be a whole number >= 0; got '${flag === '--limit' ? values.limit : values.offset}'.\n`);
            return 2;
          }
        }
        const rows = journal.openPipeline(name).deadLetters(limit, offset).map((d) => {
          const { errors } = decodeOutcome(d);
          const last = errors[errors.length - 1];
          return { id: d.id, stage: d.stage, attempts: d.attempts, code: d.code, 'last error': last?.error.message, finished: new Date(d.finishedAt).toISOString(), errors };
        });
        if (values.json) out(JSON.stringify(rows) + '\n');
        else out(rows.length === 0 ? `pipeline '${name}' has no dead letters\n` : table(rows, ['id', 'stage', 'attempts', 'code', 'last error', 'finished']) + '\n');
        return 0;
      }
      case 'replay': {
        const name = pipelineOf();
        if (name === undefined) return 2;
        const pj = journal.openPipeline(name);
        const targets = [...new Set(values.all ? pj.deadLetters(Number.MAX_SAFE_INTEGER, 0).map((d) => d.id) : ids)];
        if (targets.length === 0) {
          err('baton replay: name the dead letters to replay (ids), or pass --all.\n');
          return 2;
        }
        const known = targets.filter((id) => pj.status(id) === 'dead');
        pj.commit(known.map((id) => ({ op: 'replay' as const, id })));
        out(`replayed ${known.length} of ${targets.length} in pipeline '${name}'${known.length < targets.length ? ' (the others are not dead letters here)' : ''}; they run at the pipeline's next start\n`);
        return 0;
      }
      default:
        err(`baton: unknown command '${command}'.\n${USAGE}`);
        return 2;
    }
  } finally {
    journal.close();
  }
}
