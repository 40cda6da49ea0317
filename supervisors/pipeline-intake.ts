import { Envelope } from '../actors/envelope.js';
import { BatonError, describe, invalidOption, isBatonError, toErrorInfo } from '../src/errors.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import type { DurableLog } from './durable-log.js';
import { checkSendOptions } from './pipeline-stages.js';
import type { SendOptions, SendResult } from './pipeline-types.js';
import type { TaskLedger } from './task-ledger.js';

const ACCEPTED: Promise<SendResult> = Promise.resolve('accepted');
const DUPLICATE: Promise<SendResult> = Promise.resolve('duplicate');

/** What the intake asks of its pipeline. */
export interface IntakeOwner {
  readonly name: string;
  /** Whether the pipeline takes tasks now (it is running). */
  readonly open: boolean;
  /** The error a send gets once the pipeline stopped or failed. */
  stoppedError(): BatonError;
}

/**
 * A pipeline's intake: `send` and `sendMany` (the batch path), waiting for room under back-pressure,
 * the reject and drop overflow policies, duplicate ids, and writing each accepted task to the
 * journal. Owns: the sequence that numbers tasks and the count of senders waiting for room (while
 * any waits, a new sender queues behind it: FIFO).
 */
export class PipelineIntake<I> {
  /** The highest task number used (continues from the journal's after a restart). */
  seq = 0;
  private waitingSenders = 0;

  constructor(
    private readonly owner: IntakeOwner,
    /** The first stage, where every task enters. */
    private readonly first: AgentSupervisor,
    private readonly ledger: TaskLedger,
    private readonly durable: DurableLog | undefined,
  ) {}

  /**
   * Accepts one task. Resolves once it is accepted (waiting while the first stage's inbox is full,
   * under the default back-pressure policy). Rejects with ERR_STOPPED once the pipeline stopped.
   */
  send(input: I, options?: SendOptions): Promise<SendResult> {
    if (!this.owner.open) return Promise.reject(this.owner.stoppedError());
    if (options !== undefined) {
      const bad = checkSendOptions(this.owner.name, options);
      if (bad !== undefined) return Promise.reject(bad);
      if (options.id !== undefined && this.isDuplicate(options.id)) return DUPLICATE;
    }
    if (this.waitingSenders === 0 && this.first.inbox.hasRoom()) {
      if (this.durable === undefined) {
        this.accept(input, options);
        return ACCEPTED;
      }
      try {
        this.accept(input, options);
      } catch (err) {
        return Promise.reject(err);
      }
      return this.durable.committed().then(() => 'accepted' as const);
    }
    const overflow = this.first.policy.mailbox.overflow;
    if (overflow === 'reject') {
      this.ledger.events.emit({ type: 'overflowed', path: this.first.path, at: this.ledger.clock.now(), result: 'rejected' });
      return Promise.resolve('rejected');
    }
    if (overflow === 'drop') {
      let env: Envelope;
      try {
        env = this.accept(input, options, false);
      } catch (err) {
        return Promise.reject(err); // an input the journal cannot hold: a rejection, never a throw
      }
      const err = new BatonError('ERR_MAILBOX_FULL', `pipeline '${this.owner.name}': the inbox of '${this.first.path}' is full (capacity ${this.first.policy.mailbox.capacity}) and its overflow policy is 'drop'.`, { stage: this.first.path });
      this.ledger.events.emit({ type: 'overflowed', path: this.first.path, at: this.ledger.clock.now(), result: 'dropped' });
      this.ledger.deadLetter(env, this.first.name, err.code, { name: err.name, message: err.message, code: err.code }, 0);
      return Promise.resolve('dropped');
    }
    return this.sendWhenRoom(input, options);
  }

  /**
   * Sends every input in order, waiting for room as needed; resolves to the number accepted. If the
   * pipeline stops part-way it rejects with ERR_STOPPED, whose `details.accepted` says how many
   * inputs went in (those go on to their outcomes). The batch path: while the first inbox has room,
   * tasks are accepted with no promise each.
   */
  async sendMany(inputs: Iterable<I>, options?: { readonly key?: (input: I, index: number) => string | undefined }): Promise<number> {
    const name = this.owner.name;
    if (inputs === null || typeof (inputs as Partial<Iterable<I>>)?.[Symbol.iterator] !== 'function') {
      throw new BatonError('ERR_INVALID_INPUT', `pipeline '${name}': sendMany takes an iterable of inputs (an array, a Set, a generator); got ${describe(inputs)}.`, { pipeline: name });
    }
    if (options !== undefined && (options === null || typeof options !== 'object' || (options.key !== undefined && typeof options.key !== 'function'))) {
      throw invalidOption(`pipeline '${name}': sendMany options`, options, '{ key?: (input, index) => string | undefined }');
    }
    // How far it got: inputs accepted, and the index of the input being sent (the failing one, if any).
    const accepted = { n: 0, index: 0 };
    try {
      await this.sendAll(inputs, options?.key, accepted);
      return accepted.n;
    } catch (err) {
      // Failed part-way: the inputs accepted so far go on to their outcomes. Say how many they are and
      // which input failed, so a caller who retries sends only the rest (not the accepted ones twice).
      const where = `(sendMany: ${accepted.n} input(s) were accepted before input ${accepted.index}, which did not go in; those go on to their outcomes)`;
      const details = { accepted: accepted.n, index: accepted.index };
      if (isBatonError(err)) throw new BatonError(err.code, `${err.message} ${where}`, { ...err.details, ...details }, err);
      throw new BatonError('ERR_INVALID_INPUT', `pipeline '${name}': the inputs iterable or the key function threw: ${toErrorInfo(err).message} ${where}`, { pipeline: name, ...details }, err);
    }
  }

  /** Wakes every sender waiting for room (the pipeline stops: they find it closed). */
  wakeSenders(): void {
    this.first.inbox.wakeAll();
  }

  private async sendAll(inputs: Iterable<I>, keyOf: ((input: I, index: number) => string | undefined) | undefined, accepted: { n: number; index: number }): Promise<void> {
    let i = 0;
    const { first, ledger } = this;
    if (keyOf === undefined && this.durable === undefined) {
      // The in-memory batch path, inlined: one Envelope and one inbox push per task while there is room.
      for (const input of inputs) {
        if (this.owner.open && this.waitingSenders === 0 && first.inbox.hasRoom()) {
          ledger.pending++;
          ledger.accepted++;
          first.enqueue(new Envelope(undefined, ++this.seq, undefined, input));
          accepted.n++;
        } else if ((await this.send(input)) === 'accepted') accepted.n++;
        accepted.index++;
      }
      return;
    }
    for (const input of inputs) {
      accepted.index = i;
      const key = keyOf?.(input, i);
      i++;
      if (this.owner.open && this.waitingSenders === 0 && first.inbox.hasRoom() && (key === undefined || typeof key === 'string')) {
        this.accept(input, key === undefined ? undefined : { key });
        accepted.n++;
        continue;
      }
      if ((await this.send(input, key === undefined ? undefined : { key })) === 'accepted') accepted.n++;
    }
    if (this.durable !== undefined) await this.durable.committed();
  }

  private async sendWhenRoom(input: I, options: SendOptions | undefined): Promise<SendResult> {
    const inbox = this.first.inbox;
    this.waitingSenders++;
    try {
      while (!inbox.hasRoom()) {
        await inbox.waitForRoom();
        if (!this.owner.open) throw this.owner.stoppedError();
      }
    } finally {
      this.waitingSenders--;
    }
    // This sender was woken for a free slot: if it does not take it, the next waiting sender must
    // hear of it, or it waits forever beside an empty inbox.
    if (options?.id !== undefined && this.isDuplicate(options.id)) {
      inbox.passRoom();
      return 'duplicate';
    }
    try {
      this.accept(input, options);
    } catch (err) {
      inbox.passRoom();
      throw err;
    }
    if (this.durable !== undefined) await this.durable.committed();
    return 'accepted';
  }

  /** A task with this id is pending here, or the journal holds it (pending or finished). */
  private isDuplicate(id: string): boolean {
    return this.ledger.pendingIds.has(id) || (this.durable !== undefined && this.durable.journal.status(id) !== undefined);
  }

  private accept(input: I, options: SendOptions | undefined, enqueue = true): Envelope {
    const durable = this.durable;
    // Encoding first: an input the journal cannot hold is refused before anything is counted.
    const payload = durable?.encode(input, `the input of pipeline '${this.owner.name}'`);
    const env = new Envelope(options?.id, ++this.seq, options?.key, input);
    if (durable !== undefined) {
      const id = this.ledger.taskId(env);
      durable.live.add(id);
      durable.push({ op: 'accept', id, seq: env.seq, key: env.key, stage: this.first.name, payload: payload! });
    }
    this.ledger.accept(options?.id);
    if (enqueue) this.first.enqueue(env);
    return env;
  }
}
