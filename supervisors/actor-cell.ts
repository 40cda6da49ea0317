import type { Logger } from 'pino';
import type { ChildParent, SupervisedChild } from './child.js';
import type { Clock } from '../src/clock.js';
import type { DeadLetters } from '../src/dead-letters.js';
import { BatonError, toErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import { Mailbox, type MailboxOptions, type MailboxPolicy } from '../src/mailbox.js';
import type { Runnable, Scheduler } from '../src/scheduler.js';
import { checkSpawnOptions, type ActorContext, type ActorDefinition, type ActorRef, type Delivery, type SpawnOptions } from '../actors/actor.js';
import type { Address } from '../src/address.js';
import type { Random } from '../src/random.js';
import type { ExitKind } from '../policies/strategy.js';
import { oneForOne } from '../policies/strategy.js';
import { Supervisor } from './supervisor.js';

export interface CellDeps {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly events: EventStream;
  readonly deadLetters: DeadLetters;
  readonly random: Random;
  /** Makes (and registers) a cell at `path` for ctx.spawn; throws ERR_DUPLICATE_NAME if the path is taken. */
  readonly makeChild: (def: ActorDefinition<any, any>, name: string, path: string, mailbox: MailboxOptions | undefined) => ActorCell<any, any>;
  /** Called once when the cell ends for good (death watch, registry). */
  readonly onTerminated: (cell: ActorCell<any, any>, reason: string, error?: unknown) => void;
}

/** How an `undefined` message waits in a mailbox (where undefined means empty). */
const UNDEFINED = Symbol('undefined message');
const box = <M>(message: M): M => (message === undefined ? (UNDEFINED as M) : message);
const unbox = <M>(item: M): M => (item === (UNDEFINED as unknown) ? (undefined as M) : item);

/**
 * The runtime side of a plain actor. The mailbox belongs to the address, not the incarnation:
 * messages that arrive during a restart wait in it. The message being processed when the actor
 * crashes goes to dead letters with the error (Akka drops it; nact loses it silently).
 */
export class ActorCell<M, S> implements Runnable, SupervisedChild, ActorRef<M>, ChildParent {
  scheduled = false;
  parent: ChildParent | null = null;
  readonly mailbox: Mailbox<M>;
  readonly log: Logger;
  private state: S | undefined = undefined;
  private status: 'running' | 'suspended' | 'terminated' = 'suspended';
  private busy = false;
  private restarts = 0;
  /** The message (boxed) an async receive is working on: back to the front of the mailbox if the actor is suspended. */
  private current: M | undefined = undefined;
  /** start() ran, or a restart did (a one-for-all restart during the tree's start can begin a later sibling first). */
  private started = false;
  private gen = 0;
  private stopRequested = false;
  /** This incarnation's context: a new one per incarnation, so a stale one's calls are ignored. */
  private ctx: ActorContext<M>;
  /** The children this incarnation spawned (ctx.spawn), under the definition's strategy; made on first spawn. */
  private kids: Supervisor | undefined = undefined;
  /** An orderly stop is under way (shutdown()): take no new message. */
  private stopping = false;
  /** Resolves shutdown() when the message in hand is done. */
  private whenIdle: (() => void) | undefined = undefined;

  constructor(
    readonly name: string,
    readonly address: Address<M>,
    private readonly def: ActorDefinition<M, S>,
    policy: MailboxPolicy,
    private readonly deps: CellDeps,
    log: Logger,
  ) {
    this.mailbox = new Mailbox<M>(policy);
    this.log = log.child({ actor: address });
    this.ctx = this.contextFor(this.gen);
  }

  get path(): string {
    return this.address;
  }

  get terminated(): boolean {
    return this.status === 'terminated';
  }

  tell(message: M): Delivery {
    if (this.status === 'terminated') {
      this.deps.deadLetters.publish({ to: this.address, message, reason: 'stopped', at: this.deps.clock.now() });
      return 'stopped';
    }
    if (!this.mailbox.hasRoom()) {
      if (this.mailbox.policy.overflow !== 'drop') return 'rejected';
      this.deps.deadLetters.publish({ to: this.address, message, reason: 'dropped', at: this.deps.clock.now() });
      return 'dropped';
    }
    this.mailbox.push(box(message));
    if (this.status === 'running' && !this.busy) this.deps.scheduler.schedule(this);
    return 'enqueued';
  }

  async send(message: M): Promise<Delivery> {
    while (this.status !== 'terminated' && !this.mailbox.hasRoom() && this.mailbox.policy.overflow === 'back-pressure') {
      await this.mailbox.waitForRoom();
    }
    return this.tell(message);
  }

  start(): void {
    // A supervisor that gave up while its tree was starting has terminated the later children.
    if (this.started || this.status === 'terminated') return;
    this.started = true;
    this.deps.events.emit({ type: 'started', path: this.path, at: this.deps.clock.now() });
    this.begin();
  }

  run(budget: number): number {
    let n = 0;
    while (n < budget && this.status === 'running' && !this.busy && !this.stopping) {
      const item = this.mailbox.shift();
      if (item === undefined) break;
      n++;
      let result: S | void | PromiseLike<S | void>;
      let thenable: boolean;
      const gen = this.gen;
      try {
        result = this.def.receive(this.state as S, unbox(item), this.ctx);
        // Inside the try: reading `then` runs user code (a getter, a Proxy trap) that may throw.
        thenable = result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function';
      } catch (err) {
        if (gen !== this.gen) this.staleFailure(err, item);
        else this.crash(err, item);
        break;
      }
      // The actor restarted inside its own receive (a child spawned there escalated at once): what
      // the ended incarnation returns is not the new one's state, and it must not crash the new one.
      if (gen !== this.gen) {
        if (thenable) Promise.resolve(result as PromiseLike<unknown>).catch(() => {});
        break;
      }
      if (thenable) {
        this.busy = true;
        this.current = item;
        // Through Promise.resolve: a thenable may call back twice (the second would free the actor
        // while its next message runs) or throw from then() (which would unwind the scheduler).
        Promise.resolve(result as PromiseLike<S | void>).then(
          (next) => {
            if (gen !== this.gen) return;
            this.busy = false;
            this.current = undefined;
            if (next !== undefined) this.state = next;
            if (this.stopping) return this.idle();
            this.afterMessage();
          },
          (err) => {
            if (gen !== this.gen) return;
            this.busy = false;
            this.current = undefined;
            if (!this.stopping) return this.crash(err, item);
            // Failing while it stops: the message is a dead letter like any crash's, but nothing restarts.
            this.deps.deadLetters.publish({ to: this.address, message: unbox(item), reason: 'crashed', error: toErrorInfo(err), at: this.deps.clock.now() });
            this.idle();
          },
        );
        break;
      }
      if (result !== undefined) this.state = result as S;
      if (this.stopRequested) {
        this.exitNormally();
        break;
      }
    }
    return n;
  }

  hasWork(): boolean {
    return this.status === 'running' && !this.busy && !this.stopping && this.mailbox.length > 0;
  }

  /**
   * An orderly stop: no new message is taken; resolves once the message in hand (an async receive)
   * is done and the children have stopped in order. The supervisor then terminates the cell, or does
   * so sooner when the child's shutdownMs runs out (the message in hand then becomes a dead letter).
   */
  async shutdown(): Promise<void> {
    if (this.status === 'terminated') return;
    this.stopping = true;
    if (this.busy) await new Promise<void>((resolve) => (this.whenIdle = resolve));
    await this.kids?.shutdown();
  }

  private idle(): void {
    const resolve = this.whenIdle;
    this.whenIdle = undefined;
    resolve?.();
  }

  /** Only the children's supervisor reports here: it went past its intensity, so this actor fails (escalation). */
  childExited(child: SupervisedChild, _exit: ExitKind, error: unknown): void {
    if (child !== this.kids || this.status !== 'running') return;
    this.crash(error, undefined);
  }

  private spawnChild<C, CS>(gen: number, def: ActorDefinition<C, CS>, options: SpawnOptions): ActorRef<C> {
    if (gen !== this.gen || this.status === 'terminated' || this.stopping) {
      throw new BatonError('ERR_STOPPED', `actor '${this.path}' cannot spawn '${String(options?.name)}': the incarnation that asked has ended (it restarted or stopped). Spawn children from the current init or receive.`, { actor: this.path });
    }
    checkSpawnOptions(options, `ctx.spawn(def, options) in '${this.path}'`);
    const kids = (this.kids ??= this.childSupervisor());
    if (kids.has(options.name)) {
      const deleted = kids.deleteChild(options.name);
      if (deleted !== true) {
        const which = deleted === 'running' ? 'a live child' : 'a child still stopping, ';
        throw new BatonError('ERR_DUPLICATE_NAME', `actor '${this.path}' already has ${which} '${options.name}'; give each child a unique name.`, { name: `${this.path}/${options.name}` });
      }
    }
    const path = `${this.path}/${options.name}`;
    const build = (): ActorCell<C, CS> => this.deps.makeChild(def, options.name, path, options.mailbox);
    const child = build();
    kids.add(child, options.restart ?? 'permanent', options.shutdownMs ?? 5_000, build);
    // Spawned from init, the child starts with the parent; a suspended tree starts it at its restart.
    if (kids.running) child.start();
    return child;
  }

  private childSupervisor(): Supervisor {
    const kids = new Supervisor(this.name, this.path, this.def.supervision ?? oneForOne(), { clock: this.deps.clock, random: this.deps.random, events: this.deps.events });
    kids.announce = false;
    kids.parent = this;
    return kids;
  }

  /** The children of the incarnation that ends now stop first (Akka's default on restart and stop). */
  private endChildren(reason: string, error?: unknown): void {
    const kids = this.kids;
    if (kids === undefined) return;
    this.kids = undefined;
    kids.terminate(reason, error);
  }

  private afterMessage(): void {
    if (this.stopRequested) this.exitNormally();
    else if (this.hasWork()) this.deps.scheduler.schedule(this);
  }

  private begin(): void {
    this.status = 'running';
    this.stopRequested = false;
    this.stopping = false;
    // A new incarnation, a new context: a late ctx.stop() from a replaced incarnation's async receive
    // must not stop this one (all incarnations shared one ctx, and it did).
    this.ctx = this.contextFor(this.gen);
    const gen = this.gen;
    let state: S | undefined;
    try {
      state = this.def.init?.(this.ctx);
    } catch (err) {
      if (gen !== this.gen) this.staleFailure(err, undefined);
      else this.crash(err, undefined);
      return;
    }
    // Restarted inside its own init (see run): the newer incarnation's state stands.
    if (gen !== this.gen) return;
    this.state = state;
    // ctx.stop() from init: the actor ends normally before it handles a message (it went on to the next one).
    if (this.stopRequested) return this.exitNormally();
    if (this.hasWork()) this.deps.scheduler.schedule(this);
  }

  /** The context of the incarnation numbered `gen` (see suspend: each suspension ends an incarnation). */
  private contextFor(gen: number): ActorContext<M> {
    return {
      self: this,
      path: this.address,
      log: this.log,
      stop: () => {
        if (gen === this.gen && this.status === 'running') this.stopRequested = true;
      },
      spawn: (def, options) => this.spawnChild(gen, def, options),
    };
  }

  /**
   * An incarnation that had already ended (its actor restarted inside its init or receive) threw: the
   * message it held is a dead letter, as after any crash, but the incarnation now running goes on.
   */
  private staleFailure(thrown: unknown, item: M | undefined): void {
    const error = toErrorInfo(thrown);
    if (item !== undefined) this.deps.deadLetters.publish({ to: this.address, message: unbox(item), reason: 'crashed', error, at: this.deps.clock.now() });
    this.log.warn({ err: thrown }, 'an ended incarnation failed after its actor restarted; the current one goes on');
  }

  /** `item`: the message it crashed on, boxed; undefined for a crash in init. */
  private crash(thrown: unknown, item: M | undefined): void {
    const error = toErrorInfo(thrown);
    const at = this.deps.clock.now();
    if (item !== undefined) this.deps.deadLetters.publish({ to: this.address, message: unbox(item), reason: 'crashed', error, at });
    this.deps.events.emit({ type: 'crashed', path: this.path, at, error });
    this.suspend();
    if (this.parent !== null) this.parent.childExited(this, 'crash', thrown);
    else this.terminate('crashed', thrown);
  }

  private exitNormally(): void {
    this.suspend();
    if (this.parent !== null) this.parent.childExited(this, 'normal', undefined);
    else this.terminate('normal');
  }

  suspend(): void {
    if (this.status === 'terminated') return;
    this.endChildren('shutdown');
    this.idle();
    this.status = 'suspended';
    // A message still being processed (async receive) is not lost: it runs again after the restart.
    if (this.busy && this.current !== undefined) this.mailbox.unshift(this.current);
    this.current = undefined;
    this.busy = false;
    this.gen++;
  }

  restart(): void {
    if (this.status === 'terminated') return;
    // Supervisors suspend before they restart; a restart of a running cell does the same, so an
    // async receive of the old instance takes back its message and cannot write into the new one.
    if (this.status === 'running') this.suspend();
    this.started = true;
    this.deps.events.emit({ type: 'restarted', path: this.path, at: this.deps.clock.now(), restarts: ++this.restarts });
    this.begin();
  }

  terminate(reason: string, error?: unknown): void {
    if (this.status === 'terminated') return;
    this.endChildren(reason, error);
    this.suspend();
    this.status = 'terminated';
    const at = this.deps.clock.now();
    const info = error === undefined ? undefined : toErrorInfo(error);
    for (const item of this.mailbox.clear()) {
      this.deps.deadLetters.publish({ to: this.address, message: unbox(item), reason: 'stopped', at, ...(info ? { error: info } : {}) });
    }
    this.mailbox.wakeAll();
    this.deps.events.emit({ type: 'stopped', path: this.path, at, reason });
    this.deps.onTerminated(this, reason, error);
  }
}

export function unknownAddress(address: string): BatonError {
  return new BatonError('ERR_UNKNOWN_ADDRESS', `no actor or stage lives at '${address}'; check the name (addresses look like 'pipeline/stage' or 'supervisor/child') or spawn it first.`, { address });
}
