import { BatonError, describe } from '../src/errors.js';
import type { ActorContext, ActorDefinition } from '../src/actor-cell.js';
import type { MailboxOptions } from '../src/mailbox.js';

export interface ActorOptions<M, S> {
  readonly init?: (ctx: ActorContext<M>) => S;
  readonly receive: (state: S, message: M, ctx: ActorContext<M>) => S | void | PromiseLike<S | void>;
  readonly mailbox?: MailboxOptions;
}

/** Defines a plain actor: `receive(state, message, ctx)` returns the next state. */
export function actor<M, S = undefined>(options: ActorOptions<M, S>): ActorDefinition<M, S> {
  if (options === null || typeof options !== 'object' || typeof options.receive !== 'function') {
    throw new BatonError('ERR_INVALID_OPTION', `actor(options) needs { receive(state, message, ctx) }; got ${describe(options)}.`, { option: 'actor' });
  }
  if (options.init !== undefined && typeof options.init !== 'function') {
    throw new BatonError('ERR_INVALID_OPTION', `actor init must be a function (ctx) => state; got ${describe(options.init)}.`, { option: 'init' });
  }
  return Object.freeze({ ...options, kind: 'actor' as const });
}
