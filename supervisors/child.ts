import type { ExitKind } from '../policies/strategy.js';

/** What a supervisor hears from a child that ended. */
export interface ChildParent {
  readonly path: string;
  childExited(child: SupervisedChild, exit: ExitKind, error: unknown): void;
}

/**
 * A node of a supervision tree: an actor cell, an agent stage, or a supervisor. A restart keeps the
 * child's address and inbox; only `terminate` gives its queued work up (to dead letters, never silently).
 */
export interface SupervisedChild {
  readonly name: string;
  readonly path: string;
  parent: ChildParent | null;
  readonly terminated: boolean;
  /** Stops processing and keeps the inbox; work in flight goes back to it uncharged. */
  suspend(): void;
  /** Starts again with fresh state (init runs again) and resumes the inbox. */
  restart(): void;
  /** Ends for good: what is still queued becomes dead letters, watchers are told. */
  terminate(reason: string, error?: unknown): void;
  /**
   * An orderly stop: takes no new work and resolves when the work in hand is done (the supervisor
   * then terminates it, or sooner when the child's shutdownMs runs out). Optional; without it the
   * child is terminated at once.
   */
  shutdown?(): Promise<void>;
}
