import type { Clock, TimerHandle } from '../src/clock.js';

/**
 * A stage's one timer. Owns: the pending timer and the instant it is armed for. The stage arms it
 * for the earliest of the oldest run's deadline, the first due retry and the breaker's probe, so a
 * stage with 64 async runs in flight has one timer, not 64. Contract: `arm(at)` with the same
 * instant is free (the hot path calls it whenever a new deadline might be the earliest); `at` as
 * Infinity disarms; the callback runs at most once per arming.
 */
export class StageTimer {
  /** The instant the timer is armed for; Infinity when it is not armed. */
  at = Infinity;
  private handle: TimerHandle | undefined = undefined;

  constructor(
    private readonly clock: Clock,
    private readonly owner: { timerFired(): void },
  ) {}

  arm(at: number): void {
    if (at === this.at) return;
    this.cancel();
    if (at === Infinity) return;
    this.at = at;
    this.handle = this.clock.setTimer(at - this.clock.now(), (this.fired ??= () => this.fire()));
  }

  cancel(): void {
    this.handle?.cancel();
    this.handle = undefined;
    this.at = Infinity;
  }

  /** The timer's callback, made on first use: an idle agent sets no timer and pays for no closure. */
  private fired: (() => void) | undefined = undefined;

  private fire(): void {
    this.handle = undefined;
    this.at = Infinity;
    this.owner.timerFired();
  }
}
