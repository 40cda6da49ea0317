import type { ErrorInfo } from '../src/errors.js';

/** One failed run of a task, kept in its history. `charged` is false for runs the breaker took on the agent. */
export interface AttemptError {
  readonly stage: string;
  readonly attempt: number;
  readonly at: number;
  readonly charged: boolean;
  readonly error: ErrorInfo;
}

/** Joins the branches of a fanned-out task into one outcome. */
export interface FanOut {
  open: number;
  readonly outputs: { stage: string; output: unknown }[];
  dead: Envelope | undefined;
  /** The dead-letter code of the first branch that was dead-lettered. */
  deadCode?: string;
  /** With a journal: the branches are tasks of their own in it, joined by supervisors/fan-join.ts. */
  journaled?: true;
}

/**
 * A task on its way through a pipeline. The same object moves from stage to stage (a handoff
 * rewrites `payload` and resets `attempts`), so a handoff allocates nothing. About 100 bytes.
 */
export class Envelope {
  /** Runs charged to this task at its current stage. 0: fresh here. */
  attempts = 0;
  /** When a waiting retry is due (clock ms). */
  dueAt = 0;
  errors: AttemptError[] | undefined = undefined;
  fan: FanOut | undefined = undefined;
  /** Durable pipelines: the encoded output a stage just produced, until its handoff or completion is recorded. */
  bytes: Uint8Array | undefined = undefined;
  /** Durable pipelines: it was running when the process died; it runs alone next, to find out whether it is to blame. */
  suspect = false;
  /** When the breaker hold in which it last failed as a probe began (its `openedAt`); -1: never. */
  probedIn = -1;
  /**
   * When the breaker hold began in which a failure of it here was put on the agent, not on it (its
   * `openedAt`); -1: never. Once a success has ended that hold, the task is no longer fresh here.
   */
  excusedIn = -1;
  /**
   * When it entered its current stage's inbox (performance.now()), while run-time histograms want
   * it (src/diagnostics.ts, arrivals); -1 when not noted or already reported.
   */
  arrivedAt = -1;

  constructor(
    /** The id given to `send`, or undefined until one is needed (made from `seq`). */
    public id: string | undefined,
    readonly seq: number,
    readonly key: string | undefined,
    public payload: unknown,
  ) {}

  branch(payload: unknown): Envelope {
    const e = new Envelope(this.id, this.seq, this.key, payload);
    e.errors = this.errors?.slice();
    e.fan = this.fan;
    return e;
  }
}
