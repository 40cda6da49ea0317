import type { Clock, TimerHandle } from '../src/clock.js';
import { BatonError, toErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Random } from '../src/random.js';
import { calculateDelay } from '../policies/backoff.js';
import type { ChildParent, SupervisedChild } from './child.js';
import { recordRestart, type RestartWindow } from '../policies/intensity.js';
import { restartSet, shouldRestart, type ExitKind, type RestartType, type SupervisorStrategy } from '../policies/strategy.js';

export interface SupervisorDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
}

interface Entry {
  child: SupervisedChild;
  readonly restart: RestartType;
  /**
   * How long an orderly stop (terminateChild, a supervisor's own stop, system.shutdown) waits for the
   * child to finish the message it is working on: 0 ends it at once (OTP's brutal_kill), Infinity waits.
   */
  readonly shutdownMs: number;
  /** Makes the child anew (restartChild after terminateChild): a terminated child cannot come back. */
  readonly build: (() => SupervisedChild) | undefined;
  /** false once the child ended for good (temporary, or transient after a normal exit), or is being stopped. */
  alive: boolean;
  /**
   * The orderly stop under way (terminateChild): a second terminateChild, and a supervisor that
   * stops, wait for this one; restartChild and deleteChild are refused until it has ended (the old
   * child still holds its address).
   */
  stopping: Promise<void> | undefined;
  /**
   * The restart decision this child is waiting on. A child that crashes while it is being restarted
   * makes a newer decision that takes its set over: the older one's loop must skip them.
   */
  decision: object | undefined;
}

/**
 * Interprets a SupervisorStrategy over its children, in start order. It routes no messages: it
 * only hears that a child ended and decides, with the pure functions of strategy.ts, intensity.ts
 * and backoff.ts, whether to restart it (and which siblings with it) or to give up and escalate.
 */
export class Supervisor implements SupervisedChild, ChildParent {
  parent: ChildParent | null = null;
  private readonly entries: Entry[] = [];
  private window: RestartWindow = [];
  private step = 0;
  private lastRestartAt = -Infinity;
  private status: 'running' | 'suspended' | 'terminated' = 'running';
  /**
   * Restarts decided but waiting out their backoff, oldest first. A child in a later decision's set
   * is taken over by it: it comes back once, with that set, at that decision's time (so a child
   * never restarts before a sibling that the same decision restarts ahead of it).
   */
  private pending: { entries: Entry[]; timer: TimerHandle }[] = [];
  /**
   * Called when this supervisor gives up and has no parent to escalate to, before its children
   * are terminated; may return the error their unfinished work is dead-lettered with.
   */
  onFailed: ((error: BatonError) => BatonError | void) | undefined = undefined;
  /** Called once when this supervisor ends for good (death watch). */
  onTerminated: ((reason: string, error?: unknown) => void) | undefined = undefined;

  constructor(
    readonly name: string,
    readonly path: string,
    readonly strategy: SupervisorStrategy,
    private readonly deps: SupervisorDeps,
  ) {}

  get terminated(): boolean {
    return this.status === 'terminated';
  }

  /** Running: neither suspended for a restart, nor stopping, nor ended. A child added now may start now. */
  get running(): boolean {
    return this.status === 'running' && !this.stopping;
  }

  get children(): readonly SupervisedChild[] {
    return this.entries.map((e) => e.child);
  }

  /**
   * Adds a child at the end of the start order. `shutdownMs`: see Entry; optional, defaults to 5,000
   * ms (OTP's default for a worker). `build` makes the child again for restartChild.
   */
  add(child: SupervisedChild, restart: RestartType = 'permanent', shutdownMs = 5_000, build?: () => SupervisedChild): void {
    child.parent = this;
    this.entries.push({ child, restart, shutdownMs, build, alive: true, stopping: undefined, decision: undefined });
  }

  /** Each child with what its supervisor knows of it (OTP's which_children), in start order. */
  describeChildren(): ChildState[] {
    return this.entries.map((e) => ({
      name: e.child.name,
      path: e.child.path,
      kind: e.child instanceof Supervisor ? 'supervisor' : 'worker',
      restart: e.restart,
      shutdownMs: e.shutdownMs,
      status: e.stopping !== undefined ? 'stopping' : !e.alive ? 'terminated' : e.decision !== undefined ? 'restarting' : 'running',
    }));
  }

  /** The entry of the child named `name`, or undefined. */
  private entry(name: string): Entry | undefined {
    return this.entries.find((e) => e.child.name === name);
  }

  /** Whether a child named `name` is known (running, restarting, or terminated with its spec kept). */
  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  /**
   * Stops the child `name` in order (see Entry.shutdownMs) and keeps its spec, so restartChild can
   * start it again; a temporary child's spec is deleted (as OTP does). Nothing is restarted: an
   * orderly stop is not a failure. Resolves when the child has ended.
   */
  terminateChild(name: string): Promise<void> {
    const e = this.entry(name);
    if (e === undefined) return Promise.resolve();
    if (e.stopping !== undefined) return e.stopping;
    if (!e.alive) return Promise.resolve();
    e.alive = false;
    this.forget(e);
    e.stopping = stopInOrder(e.child, e.shutdownMs).finally(() => {
      e.stopping = undefined;
      // A temporary child's spec goes with it (it may have gone already, with its whole supervisor).
      const at = this.entries.indexOf(e);
      if (e.restart === 'temporary' && at >= 0) this.entries.splice(at, 1);
    });
    return e.stopping;
  }

  /**
   * Starts a terminated child `name` again from its spec. 'running': it runs (or waits out a
   * restart); 'stopping': a terminateChild has not finished.
   */
  restartChild(name: string): true | 'running' | 'stopping' {
    const e = this.entry(name);
    if (e === undefined || e.build === undefined) throw new Error(`no restartable child '${name}'`);
    if (e.stopping !== undefined) return 'stopping';
    if (e.alive) return 'running';
    e.child = e.build();
    e.child.parent = this;
    e.alive = true;
    e.decision = undefined;
    return true;
  }

  /** Forgets a terminated child's spec; 'running' or 'stopping' (see restartChild) when it cannot. */
  deleteChild(name: string): true | 'running' | 'stopping' {
    const e = this.entry(name);
    if (e === undefined) return true;
    if (e.stopping !== undefined) return 'stopping';
    if (e.alive) return 'running';
    this.entries.splice(this.entries.indexOf(e), 1);
    return true;
  }

  /** Takes `e` out of the restarts it waits on (it was stopped on purpose). */
  private forget(e: Entry): void {
    e.decision = undefined;
    for (const p of this.pending) {
      p.entries = p.entries.filter((x) => x !== e);
      if (p.entries.length === 0) p.timer.cancel();
    }
    this.pending = this.pending.filter((p) => p.entries.length > 0);
  }

  /**
   * Stops every child in order, last started first, each within its own shutdownMs, then ends this
   * supervisor. A child that fails while its siblings stop is not restarted.
   */
  async shutdown(): Promise<void> {
    if (this.status === 'terminated' || this.stopping) return;
    this.stopping = true;
    this.cancelPending();
    for (const e of [...this.entries].reverse()) {
      // A child that a terminateChild is stopping gets the rest of its own shutdownMs, not less.
      if (e.stopping !== undefined) await e.stopping;
      if (!e.alive) continue;
      e.alive = false;
      await stopInOrder(e.child, e.shutdownMs);
    }
    this.terminate('shutdown');
  }

  private stopping = false;

  childExited(child: SupervisedChild, exit: ExitKind, error: unknown): void {
    if (this.status !== 'running' || this.stopping) return;
    const index = this.entries.findIndex((e) => e.child === child);
    const entry = this.entries[index];
    if (entry === undefined || !entry.alive) return;
    if (!shouldRestart(entry.restart, exit)) {
      entry.alive = false;
      child.terminate(exit === 'normal' ? 'normal' : 'crashed', error);
      // OTP deletes a temporary child's spec when it ends; a transient one stays for restartChild.
      if (entry.restart === 'temporary') this.entries.splice(this.entries.indexOf(entry), 1);
      return;
    }
    const now = this.deps.clock.now();
    const decision = recordRestart(this.strategy.intensity, this.window, now);
    this.window = decision.window;
    if (!decision.restart) return this.escalate(child, error);

    // The quiet period runs from the last restart, not the last failure: a child that crashes right
    // after each restart is never quiet (measured from the failure, a 32 s backoff step counted as 32 s
    // of quiet, and the backoff fell back to 1 s every sixth restart instead of staying at its cap).
    this.step = now - this.lastRestartAt > this.strategy.resetAfterMs ? 1 : this.step + 1;
    const affected = restartSet(this.strategy.kind, index, this.entries.length)
      .map((i) => this.entries[i]!)
      .filter((e) => e.alive);
    // A temporary child caught in a one-for-all or rest-for-one restart is not restarted: it is
    // stopped and removed, as OTP's supervisor does (it was restarted like the others).
    for (const e of affected) {
      if (e.child === child || e.restart !== 'temporary') continue;
      e.alive = false;
      e.child.terminate('shutdown');
      this.entries.splice(this.entries.indexOf(e), 1);
    }
    const set = affected.filter((e) => e.alive);
    // Stop siblings in reverse start order, restart all in start order (as OTP does).
    for (const e of [...set].reverse()) if (e.child !== child) e.child.suspend();
    const token = {};
    for (const e of set) e.decision = token;
    const delay = calculateDelay(this.strategy.backoff, this.step, this.deps.random);
    for (const p of this.pending) {
      p.entries = p.entries.filter((e) => !set.includes(e));
      if (p.entries.length === 0) p.timer.cancel();
    }
    this.pending = this.pending.filter((p) => p.entries.length > 0);
    if (delay <= 0) return this.restartNow(() => this.restartSet(set, token));
    const waiting = { entries: set, timer: undefined as unknown as TimerHandle };
    waiting.timer = this.deps.clock.setTimer(delay, () => {
      this.pending = this.pending.filter((p) => p !== waiting);
      if (this.status !== 'running') return;
      this.restartSet(waiting.entries, token);
    });
    this.pending.push(waiting);
  }

  /**
   * Runs a restart now, or, if one is running (a restarted child failed again at once: its init threw),
   * right after it. Restarts must not recurse: restart -> init throws -> childExited -> restart -> ...
   * grew the stack by one round per attempt, and with maxRestarts 5,000 it overflowed at about 1,200
   * instead of escalating. This loop keeps the stack flat; the intensity window still counts each one.
   */
  private restartNow(restart: () => void): void {
    this.queuedRestarts.push(restart);
    if (this.restarting) return;
    this.restarting = true;
    try {
      for (let next = this.queuedRestarts.shift(); next !== undefined; next = this.queuedRestarts.shift()) {
        if (this.status === 'running') next();
      }
    } finally {
      this.restarting = false;
      this.queuedRestarts = [];
    }
  }

  private restarting = false;
  private queuedRestarts: (() => void)[] = [];

  /** Restarts, in start order, the children of `set` that are still `decision`'s (see Entry.decision). */
  private restartSet(set: readonly Entry[], decision: object): void {
    for (const e of set) {
      if (!e.alive || e.decision !== decision) continue;
      e.decision = undefined;
      this.lastRestartAt = this.deps.clock.now();
      e.child.restart();
    }
  }

  private cancelPending(): void {
    for (const p of this.pending) p.timer.cancel();
    this.pending = [];
  }

  private escalate(child: SupervisedChild, cause: unknown): void {
    const { maxRestarts, withinMs } = this.strategy.intensity;
    const reason = `child '${child.path}' needed more than ${maxRestarts} restarts within ${withinMs} ms; last error: ${toErrorInfo(cause).message}`;
    this.deps.events.emit({ type: 'escalated', path: this.path, at: this.deps.clock.now(), reason });
    const error = new BatonError('ERR_ESCALATED', `supervisor '${this.path}' gave up: ${reason}`, { supervisor: this.path, child: child.path }, cause);
    if (this.parent !== null) {
      this.suspend();
      this.parent.childExited(this, 'crash', error);
    } else {
      this.terminate('escalated', this.onFailed?.(error) ?? error);
    }
  }

  suspend(): void {
    if (this.status !== 'running') return;
    this.status = 'suspended';
    this.cancelPending();
    for (const e of [...this.entries].reverse()) if (e.alive) e.child.suspend();
  }

  restart(): void {
    if (this.status === 'terminated') return;
    this.status = 'running';
    this.window = [];
    this.step = 0;
    const decision = {};
    for (const e of this.entries) e.decision = decision;
    this.restartSet(this.entries, decision);
  }

  terminate(reason: string, error?: unknown): void {
    if (this.status === 'terminated') return;
    this.cancelPending();
    this.status = 'terminated';
    for (const e of [...this.entries].reverse()) {
      e.alive = false;
      e.child.terminate(reason, error);
    }
    if (this.announce) this.deps.events.emit({ type: 'stopped', path: this.path, at: this.deps.clock.now(), reason });
    this.onTerminated?.(reason, error);
  }

  /** false for the supervisor inside an actor that spawns children: the actor's own 'stopped' is the one event for its path. */
  announce = true;
}

/** A child as `children()` reports it. */
export interface ChildState {
  readonly name: string;
  readonly path: string;
  /** 'supervisor' for a subtree, 'worker' for an actor (OTP's words). */
  readonly kind: 'supervisor' | 'worker';
  readonly restart: RestartType;
  readonly shutdownMs: number;
  /**
   * 'restarting': crashed and waiting out its backoff; 'stopping': a terminateChild waits for it to
   * finish its message in hand; 'terminated': ended, spec kept (restartChild starts it again).
   */
  readonly status: 'running' | 'restarting' | 'stopping' | 'terminated';
}

/**
 * Ends `child` in order: lets it finish what it is doing for up to `ms` (wall-clock, like a pipeline's
 * drainMs: a simulated clock does not advance while the process stops), then terminates it.
 */
export async function stopInOrder(child: SupervisedChild, ms: number): Promise<void> {
  if (child.terminated) return;
  if (ms > 0 && child.shutdown !== undefined) {
    let timer: NodeJS.Timeout | undefined;
    const finished = child.shutdown();
    await (ms === Infinity ? finished : Promise.race([finished, new Promise<void>((r) => (timer = setTimeout(r, ms)))]));
    if (timer !== undefined) clearTimeout(timer);
  }
  child.terminate('shutdown');
}
