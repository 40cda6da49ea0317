/**
 * Every error Baton raises on purpose is a `BatonError` with a stable `code`.
 * Messages name the bad input and say what to do; codes never change meaning.
 */
export type BatonErrorCode =
  | 'ERR_INVALID_OPTION' // an option has the wrong type or range
  | 'ERR_INVALID_INPUT' // a message or task input Baton cannot accept
  | 'ERR_DUPLICATE_NAME' // two stages, actors or pipelines share a name
  | 'ERR_UNKNOWN_ADDRESS' // nothing lives at the address a message was sent to
  | 'ERR_STOPPED' // the system, pipeline or actor no longer accepts messages
  | 'ERR_MAILBOX_FULL' // a bounded mailbox refused a message (reject policy)
  | 'ERR_TIMEOUT' // a task ran longer than its stage's timeoutMs
  | 'ERR_ABORTED' // a task was aborted because its stage or system stopped
  | 'ERR_TASK_FAILED' // a handler threw or rejected (wraps non-Error throws)
  | 'ERR_ESCALATED' // a supervisor went past its restart intensity
  | 'ERR_PIPELINE_FAILED' // a pipeline went past its own intensity and stopped
  | 'ERR_PROCESS_DIED' // the process ended while a task was running (recorded on recovery)
  | 'ERR_WORKER_EXITED' // the worker thread running a task died (process.exit, an uncaught error, a crash) before answering
  | 'ERR_WORKER_MEMORY' // the worker thread running a task ran out of its heap (resourceLimits) and died
  | 'ERR_JOURNAL_VERSION' // the journal file was written by another schema version
  | 'ERR_JOURNAL_FOREIGN' // the file is not a Baton journal (or not SQLite at all)
  | 'ERR_JOURNAL_READONLY' // the process cannot write the journal file or create its companions beside it
  | 'ERR_JOURNAL_LOCKED' // another system (in this process or another) has the journal file open: one writer per file
  | 'ERR_JOURNAL_CORRUPT' // the journal file is damaged or truncated
  | 'ERR_CIRCUIT_OPEN' // supervise(): the breaker is open, the call did not run
  | 'ERR_RATE_LIMITED' // a handler was refused for rate (an HTTP 429): thrown by rateLimited()
  | 'ERR_START_FAILED' // a supervision tree gave up while it was starting (spawnSupervisor, startChild)
  | 'ERR_TRANSPORT_UNREACHABLE' // natsJetStream(): no NATS server answers at the address
  | 'ERR_TRANSPORT_AUTH' // natsJetStream(): the server refused the credentials
  | 'ERR_TRANSPORT_UNAVAILABLE' // natsJetStream(): the server runs without JetStream
  | 'ERR_TRANSPORT_CONFLICT' // another process wrote the same pipeline's keys: one writer per pipeline
  | 'ERR_TRANSPORT_FAILED' // the server did not acknowledge a journal write in time
  | 'ERR_BUDGET_EXHAUSTED' // an agent's budget was spent and its onExhausted is 'dead-letter'
  | 'ERR_CANCELLED' // pipeline.cancel(id) (or `baton cancel`) ended the task: a dead letter, replayable
  | 'ERR_CHILD_RUNNING'; // restartChild or deleteChild of a child that is running: terminateChild it first

/** Every error Baton throws or reports: a stable `code` (see BatonErrorCode), a message that names the input and says what to do, and `details` for programs. */
export class BatonError extends Error {
  readonly code: BatonErrorCode;
  /** Extra facts for programs: the option name, the address, the stage, ... */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: BatonErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BatonError';
    this.code = code;
    this.details = details;
  }
}

/** Whether `value` is a BatonError (with `code`, if given). */
export function isBatonError(value: unknown, code?: BatonErrorCode): value is BatonError {
  return value instanceof BatonError && (code === undefined || value.code === code);
}

/**
 * A readable, JSON-safe rendering of anything a handler threw. No stack: V8 formats a stack on
 * first access (tens of microseconds, the larger part of a restart's cost), and a dead letter's
 * history is about which task failed where and why, not the handler's frames.
 */
export interface ErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

/** Unpaired UTF-16 surrogates (text cut inside an emoji, say): the journal stores UTF-8, which cannot hold them. */
const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Error text is for people: an unpaired surrogate becomes U+FFFD here, so a history can always be journaled. */
function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATES, '\uFFFD');
}

/**
 * What a handler threw, as ErrorInfo. Total: it never throws, whatever `thrown` is (a Proxy whose
 * every trap throws, a revoked Proxy, throwing getters), since it runs inside the runtime's own
 * catch blocks, where a throw would escape to the scheduler and end the process.
 */
export function toErrorInfo(thrown: unknown): ErrorInfo {
  try {
    return errorInfoOf(thrown);
  } catch {
    return { name: 'NonError', message: 'a value was thrown that cannot be read (reading it threw)' };
  }
}

function errorInfoOf(thrown: unknown): ErrorInfo {
  if (thrown instanceof Error) {
    const code = field(thrown, 'code');
    return {
      name: wellFormed(safeString(field(thrown, 'name'))),
      message: wellFormed(safeString(field(thrown, 'message'))),
      ...(typeof code === 'string' ? { code: wellFormed(code) } : {}),
    };
  }
  let message: string;
  try {
    message = typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? safeString(thrown);
  } catch {
    message = safeString(thrown);
  }
  return { name: 'NonError', message: wellFormed(`non-Error value thrown: ${message}`) };
}

// Whatever user code throws, describing it must not throw in turn (from inside a catch block of the
// runtime): a getter may throw, and String() throws for a null-prototype object or a Symbol.toPrimitive
// that does.
function field(o: object, key: string): unknown {
  try {
    return (o as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    try {
      return describe(value);
    } catch {
      return 'an unprintable value';
    }
  }
}

/** Describes a bad value for an error message without dumping huge objects. Never throws. */
export function describe(value: unknown): string {
  try {
    return describeValue(value);
  } catch {
    return 'a value that cannot be read (a Proxy, or a getter that throws)';
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `an object (${Object.keys(value).slice(0, 4).join(', ') || 'no keys'})`;
}

export function invalidOption(path: string, value: unknown, expected: string): BatonError {
  return new BatonError(
    'ERR_INVALID_OPTION',
    `${path} must be ${expected}; got ${describe(value)}. Fix the option or leave it out to use the default.`,
    { option: path, value },
  );
}
