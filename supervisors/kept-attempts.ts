import type { AttemptError } from '../actors/envelope.js';
import { decode, encode } from '../src/codec.js';
import { toErrorInfo } from '../src/errors.js';
import type { PipelineWire, WireTask } from '../src/journal/nats-wire.js';
import type { Logger } from '../src/logging.js';

/** What the server keeps of a task at a stage beside its message (see KeptAttempts). */
interface Kept {
  attempts: number;
  errors: AttemptError[];
  /** Deliveries that were clean give-backs (a process stopping), not crashes. */
  given: number;
  /** The last write of it, chained: writes to one task go in order. */
  saved: Promise<void>;
}

/**
 * A hosted stage's record, on the server (the `<bucket>_tries` KV, `<p>.<stage>.<id>`), of what its
 * tasks went through there that the server does not count itself: the attempts charged (with their
 * history) and how many of the deliveries were clean give-backs. The server counts deliveries only,
 * so without it a task that failed twice here ran maxAttempts more times in the next process, and a
 * task given back by three clean stops (a rolling deploy) was taken for one that killed its process
 * three times (ERR_PROCESS_DIED, never having failed). Written only on failures and give-backs,
 * read only on a delivery after the first, dropped when the task leaves the stage. A record names
 * the stream sequence of the message it is about: a task sent again later with the same id is
 * another message and finds nothing.
 */
export class KeptAttempts {
  private readonly kept = new Map<string, Kept>();

  constructor(
    private readonly stage: string,
    private readonly wire: PipelineWire,
    private readonly log: Logger,
  ) {}

  /**
   * What the server kept of `t` (delivered before), or undefined. A record of another message (an
   * earlier task with this id) is ignored, and dropped when this one leaves.
   */
  read(t: WireTask): { readonly attempts: number; readonly errors: AttemptError[]; readonly given: number } | undefined {
    const known = this.kept.get(t.id);
    if (known !== undefined) return known; // delivered again while in hand here: what this process knows is newest
    if (t.tries === undefined) return undefined;
    const kept = fresh();
    this.kept.set(t.id, kept); // on the server: dropped when the task leaves
    try {
      const [seq, attempts, errors, given] = decode<[number, number, AttemptError[], number]>(t.tries);
      if (seq !== t.msg.seq || !Number.isInteger(attempts) || attempts < 0 || !Array.isArray(errors) || !Number.isInteger(given) || given < 0) return undefined;
      Object.assign(kept, { attempts, errors, given });
      return kept;
    } catch (err) {
      this.log.warn({ err: toErrorInfo(err), stage: this.stage, taskId: t.id }, 'the attempts kept for a task cannot be read; it runs as if it had none');
      return undefined;
    }
  }

  /** A run of `t` failed: its attempts and history so far go to the server. Resolves once written (or failed to). */
  failed(t: WireTask, attempts: number, errors: AttemptError[] | undefined): Promise<void> {
    const kept = this.entry(t);
    kept.attempts = attempts;
    kept.errors = errors ?? [];
    return this.save(t, kept);
  }

  /** `t` goes back to the server uncharged (a clean stop): counted, then `giveBack` runs once that is written. */
  givenBack(t: WireTask, giveBack: () => void): Promise<void> {
    const kept = this.entry(t);
    kept.given++;
    return this.save(t, kept).then(() => {
      // It is the server's now: if it comes back here, its delivery brings the record along.
      if (this.kept.get(t.id) === kept) this.kept.delete(t.id);
      giveBack();
    });
  }

  /** `t` left the stage: its record is dropped (after its last write; one left over, the bucket drops after 7 days). */
  forget(id: string): void {
    const kept = this.kept.get(id);
    if (kept === undefined) return;
    this.kept.delete(id);
    void kept.saved.then(() => this.wire.records.forgetTries(this.stage, id)).catch(() => undefined);
  }

  /** What this process knows of `t`, from the record its delivery brought if it has not looked yet. */
  private entry(t: WireTask): Kept {
    if (!this.kept.has(t.id)) this.read(t);
    let kept = this.kept.get(t.id);
    if (kept === undefined) this.kept.set(t.id, (kept = fresh()));
    return kept;
  }

  private save(t: WireTask, kept: Kept): Promise<void> {
    const rec = encode([t.msg.seq, kept.attempts, kept.errors, kept.given], `the attempts of task ${t.id}`);
    kept.saved = kept.saved
      .then(() => this.wire.records.saveTries(this.stage, t.id, rec))
      .catch((err: unknown) => this.log.warn({ err: toErrorInfo(err), stage: this.stage, taskId: t.id }, 'keeping the attempts of a task on the server failed; after a crash it may run more times'));
    return kept.saved;
  }
}

/** A task nothing is known of yet at this stage. */
function fresh(): Kept {
  return { attempts: 0, errors: [], given: 0, saved: Promise.resolve() };
}
