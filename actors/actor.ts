import { BatonError, describe } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { Logger } from '../src/logging.js';
import type { Address } from '../src/address.js';
import type { MailboxOptions } from '../src/mailbox.js';
import { isStrategy, RESTART_TYPES, type RestartType, type SupervisorStrategy } from '../policies/strategy.js';
import { assertName } from '../src/address.js';

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

/** How an actor starts a child of its own (`ctx.spawn`). */
export interface SpawnOptions {
  /** The child's name; it lives at `<parent path>/<name>`. Required. */
  readonly name: string;
  /** When the parent's strategy restarts it. Optional; defaults to 'permanent'. */
  readonly restart?: RestartType;
  /** Mailbox options over the definition's. Optional; defaults to the definition's. */
  readonly mailbox?: MailboxOptions;
  /**
   * How long an orderly stop waits for the child to finish the message in hand, wall-clock ms; 0
   * ends it at once, Infinity waits. Optional; defaults to 5,000 ms (OTP's default for a worker).
   */
  readonly shutdownMs?: number;
}

/**
 * What `init` and `receive` get: the actor's own ref and path, its logger, `stop()` and `spawn()`.
 * Each incarnation (after a restart) gets its own; a stale one's `stop()` is ignored and its
 * `spawn()` throws ERR_STOPPED.
 */
export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly path: string;
  readonly log: Logger;
  /** Ends this actor normally after the current message (a 'normal' exit for its supervisor). */
  stop(): void;
  /**
   * Starts a child actor that this actor supervises with its `supervision` strategy. The children
   * belong to this incarnation: when the actor restarts or ends they are stopped first (their queued
   * messages become dead letters), and the new incarnation spawns its own, as in Akka. A child that
   * fails past the strategy's intensity fails this actor (escalation). Throws ERR_DUPLICATE_NAME for
   * a name a live child has, ERR_INVALID_OPTION for a bad definition or option.
   */
  spawn<C, CS>(def: ActorDefinition<C, CS>, options: SpawnOptions): ActorRef<C>;
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
  /** How the children it spawns (`ctx.spawn`) are supervised. Optional; defaults to oneForOne(). */
  readonly supervision?: SupervisorStrategy;
}

/** What `actor()` takes. */
export interface ActorOptions<M, S> {
  /** Builds the state, at start and after every restart. Optional; defaults to undefined state. `ctx.stop()` here ends the actor before its first message. */
  readonly init?: (ctx: ActorContext<M>) => S;
  /** Handles one message and returns the next state (undefined keeps it). A throw or rejection crashes the actor; its supervisor decides what happens next. */
  readonly receive: (state: S, message: M, ctx: ActorContext<M>) => S | void | PromiseLike<S | void>;
  readonly mailbox?: MailboxOptions;
  /** How the children it spawns (`ctx.spawn`) are supervised. Optional; defaults to oneForOne(): 3 restarts within 5 s. */
  readonly supervision?: SupervisorStrategy;
}

/** Defines a plain actor: `receive(state, message, ctx)` returns the next state. */
export function actor<M, S = undefined>(options: ActorOptions<M, S>): ActorDefinition<M, S> {
  if (options === null || typeof options !== 'object' || typeof options.receive !== 'function') {
    throw new BatonError('ERR_INVALID_OPTION', `actor(options) needs { receive(state, message, ctx) }; got ${describe(options)}.`, { option: 'actor' });
  }
  checkKeys(options, ['init', 'receive', 'mailbox', 'supervision'], 'actor(options)');
  if (options.supervision !== undefined && !isStrategy(options.supervision)) {
    throw new BatonError('ERR_INVALID_OPTION', `actor supervision must be a strategy made by oneForOne(), oneForAll() or restForOne(); got ${describe(options.supervision)}.`, { option: 'supervision' });
  }
  if (options.init !== undefined && typeof options.init !== 'function') {
    throw new BatonError('ERR_INVALID_OPTION', `actor init must be a function (ctx) => state; got ${describe(options.init)}.`, { option: 'init' });
  }
  return Object.freeze({ ...options, kind: 'actor' as const });
}

/** Checks the options of ctx.spawn / a child spec; `where` names the call in the error. */
export function checkSpawnOptions(options: SpawnOptions, where: string): void {
  if (options === null || typeof options !== 'object') {
    throw new BatonError('ERR_INVALID_OPTION', `${where} needs options { name, restart?, mailbox?, shutdownMs? }; got ${describe(options)}.`, { option: where });
  }
  checkKeys(options, ['name', 'restart', 'mailbox', 'shutdownMs'], where);
  assertName(options.name, `${where}.name`);
  if (options.restart !== undefined && !RESTART_TYPES.includes(options.restart)) {
    throw new BatonError('ERR_INVALID_OPTION', `${where}.restart must be 'permanent', 'transient' or 'temporary'; got ${describe(options.restart)}.`, { option: `${where}.restart` });
  }
  checkShutdownMs(options.shutdownMs, `${where}.shutdownMs`);
}

/**
 * A shutdown timeout: a number of ms from 0 to 2^31 - 1 (about 24.8 days: Node's setTimeout ends a
 * longer timer after 1 ms, with a TimeoutOverflowWarning), or Infinity (wait as long as it takes).
 */
export function checkShutdownMs(value: unknown, where: string): void {
  const ok = value === undefined || value === Infinity || (typeof value === 'number' && value >= 0 && value <= MAX_TIMER_MS);
  if (!ok) {
    throw new BatonError('ERR_INVALID_OPTION', `${where} must be a number of ms from 0 to ${MAX_TIMER_MS} (0 ends the child at once), or Infinity to wait for it; got ${describe(value)}.`, { option: where, value });
  }
}

/** The longest delay Node's timers keep (a 32-bit signed int of ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
