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
  if (option !== undefined) return contained(option);
  return pino({ name: 'baton', level: process.env['BATON_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
}

/** What a log call may do that Baton's code calls: the level methods, child loggers, level checks. */
const LOG_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', 'child', 'isLevelEnabled']);
let warned = false;

/**
 * A user's logger whose calls cannot throw into Baton: a log call runs inside the runtime (an event
 * emitted from a run loop, an error logged from a catch block), where a throw would end the process.
 * A logger can throw in many ways (a serializer that expects `.stack` on a non-Error, a destination
 * that was closed, a custom logger's bug); each throw is swallowed, and the first one is reported once
 * as a process warning, since the logger itself cannot report it. Child loggers are contained too.
 */
export function contained(logger: Logger): Logger {
  return new Proxy(logger, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string' || !LOG_METHODS.has(key)) return value;
      return (...args: unknown[]) => {
        try {
          const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          return key === 'child' ? contained(result as Logger) : result;
        } catch (err) {
          if (!warned) {
            warned = true;
            process.emitWarning(`baton: the logger threw (${safeMessage(err)}); this and later logger errors are ignored`, { code: 'BATON_LOGGER_THREW' });
          }
          // isLevelEnabled answers false (nothing is logged); child answers a silent logger.
          return key === 'child' ? pino({ enabled: false }) : key === 'isLevelEnabled' ? false : undefined;
        }
      };
    },
  });
}

function safeMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'an unreadable error';
  }
}
