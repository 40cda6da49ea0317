import type { Agent } from '../actors/agent.js';
import type { Clock, TimerHandle } from '../src/clock.js';
import type { Random } from '../src/random.js';
import type { AgentPolicy } from '../policies/agent-policy.js';
import { calculateDelay } from '../policies/backoff.js';

/** What the worker tells its stage. */
export interface WorkerOwner {
  /** `init` produced the worker's state (or there is no init): the stage may run tasks. */
  workerReady(): void;
  /** `init` threw or rejected: the stage decides (restart intensity) whether to retry it or escalate. */
  workerFailed(thrown: unknown): void;
}

/**
 * The agent's worker: its state and the `init` that makes it. Owns: the state handlers see as
 * `ctx.state`, the generation of the current init (a late result of a superseded init is ignored),
 * the count of init failures in a row (the restart backoff grows with it and starts again at minMs
 * once an init succeeds) and the timer of the next init retry.
 */
export class StageWorker {
  state: unknown = undefined;
  private gen = 0;
  private failures = 0;
  private retryTimer: TimerHandle | undefined = undefined;

  constructor(
    private readonly init: Agent['init'],
    private readonly policy: AgentPolicy,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly owner: WorkerOwner,
  ) {}

  /** Whether a restart must run `init` again (an agent without init, or with keepState, keeps its state). */
  get fresh(): boolean {
    return this.init !== undefined && !this.policy.keepState;
  }

  /** Runs `init` (or reports ready at once without one). A promise's result arrives later, unless superseded. */
  start(): void {
    const init = this.init;
    if (init === undefined) return this.owner.workerReady();
    const gen = ++this.gen;
    let result: unknown;
    let thenable: boolean;
    try {
      result = init();
      thenable = result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function';
    } catch (err) {
      return this.owner.workerFailed(err);
    }
    if (thenable) {
      // Through Promise.resolve: a thenable's then() may throw or call back twice; this never does either.
      Promise.resolve(result as PromiseLike<unknown>).then(
        (state) => {
          if (gen !== this.gen) return;
          this.state = state;
          this.owner.workerReady();
        },
        (err) => {
          if (gen === this.gen) this.owner.workerFailed(err);
        },
      );
      return;
    }
    this.state = result;
    this.owner.workerReady();
  }

  /** `init` worked: the next failing init starts the restart backoff again at minMs. */
  started(): void {
    this.failures = 0;
  }

  /** Runs `init` again after the restart backoff (the stage decided the failure was within its intensity). */
  retryLater(again: () => void): void {
    this.failures++;
    const delay = calculateDelay(this.policy.restartBackoff, this.failures, this.random);
    this.retryTimer = this.clock.setTimer(delay, () => {
      this.retryTimer = undefined;
      again();
    });
  }

  /** Forgets any init under way or waiting (suspend, terminate); `reset` also forgets the failures in a row (a restart from above). */
  cancel(reset = false): void {
    this.gen++;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    if (reset) this.failures = 0;
  }
}
