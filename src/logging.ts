import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * `logger` option: a pino logger of the user's (Baton makes child loggers from it), `false` for
 * silence, or nothing for a default pino logger at level `BATON_LOG_LEVEL` (defaults to 'info')
 * writing JSON lines to stderr, so a program's stdout stays its own.
 */
export type LoggerOption = Logger | false | undefined;

export function createLogger(option: LoggerOption): Logger {
  if (option === false) return pino({ enabled: false });
  if (option !== undefined) return option;
  return pino({ name: 'baton', level: process.env['BATON_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
}
