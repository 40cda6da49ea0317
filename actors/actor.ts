import { BatonError, describe } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { Logger } from '../src/logging.js';
import type { Address } from '../src/address.js';
import type { MailboxOptions } from '../src/mailbox.js';

/** What `tell` did with a message. Never a throw into the sender's code. */
export type Delivery = 'enqueued' | 'rejected' | 'dropped' | 'stopped';

/** The address of a plain actor, and how to send to it. Refs stay valid across restarts: the mailbox belongs to the address. */
export interface ActorRef<M> {
  readonly address: Address<M>;
  /** Enqueues now or reports why not (a full 'back-pressure' mailbox reports 'rejected'; use `send` to wait). */
  tell(message: M): Delivery;
  /** Like `tell`, but waits for room under the 'back-pressure' policy. */
  send(message: M): Promise<Delivery>;
}

/** What `init` and `receive` get: the actor's own ref and path, its logger, and `stop()`. Each incarnation (after a restart) gets its own; a stale one's `stop()` is ignored. */
export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly path: string;
  readonly log: Logger;
  /** Ends this actor normally after the current message (a 'normal' exit for its supervisor). */
  stop(): void;
}

/** A plain actor: state plus a run-to-completion `receive`, one message at a time. */
export interface ActorDefinition<M, S> {
  readonly kind: 'actor';
  /** Builds the state, at start and after every restart. Optional; defaults to undefined state. */
  readonly init?: (ctx: ActorContext<M>) => S;
  /** Returns the next state (undefined keeps it). A throw or rejection crashes the actor; its supervisor decides. */
  readonly receive: (state: S, message: M, ctx: ActorContext<M>) => S | void | PromiseLike<S | void>;
  /** Optional; defaults to 1,000 messages with back-pressure. */
  readonly mailbox?: MailboxOptions;
}

/** What `actor()` takes. */
export interface ActorOptions<M, S> {
  /** Builds the state, at start and after every restart. Optional; defaults to undefined state. `ctx.stop()` here ends the actor before its first message. */
  readonly init?: (ctx: ActorContext<M>) => S;
  /** Handles one message and returns the next state (undefined keeps it). A throw or rejection crashes the actor; its supervisor decides what happens next. */
  readonly receive: (state: S, message: M, ctx: ActorContext<M>) => S | void | PromiseLike<S | void>;
  readonly mailbox?: MailboxOptions;
}

/** Defines a plain actor: `receive(state, message, ctx)` returns the next state. */
export function actor<M, S = undefined>(options: ActorOptions<M, S>): ActorDefinition<M, S> {
  if (options === null || typeof options !== 'object' || typeof options.receive !== 'function') {
    throw new BatonError('ERR_INVALID_OPTION', `actor(options) needs { receive(state, message, ctx) }; got ${describe(options)}.`, { option: 'actor' });
  }
  checkKeys(options, ['init', 'receive', 'mailbox'], 'actor(options)');
  if (options.init !== undefined && typeof options.init !== 'function') {
    throw new BatonError('ERR_INVALID_OPTION', `actor init must be a function (ctx) => state; got ${describe(options.init)}.`, { option: 'init' });
  }
  return Object.freeze({ ...options, kind: 'actor' as const });
}
