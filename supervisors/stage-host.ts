import type { DurableLog } from './durable-log.js';
import type { Envelope } from '../actors/envelope.js';
import type { Clock } from '../src/clock.js';
import type { ErrorInfo } from '../src/errors.js';
import type { EventStream } from '../src/events.js';
import type { Random } from '../src/random.js';
import type { Scheduler } from '../src/scheduler.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import type { BreakerState } from '../policies/breaker.js';
import type { RestartWindow } from '../policies/intensity.js';

// What a stage and its pipeline say to each other, and the stage's stats.

/** Shared empty list for rarely used queues: an idle stage allocates none (copy on first write). */
export const NONE: Envelope[] = [];
export const NO_WINDOW: RestartWindow = Object.freeze([]);

/** What a stage needs from its pipeline. */
export interface StageHost {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: EventStream;
  /** The pipeline's journal side, or undefined for a pipeline without a journal. */
  readonly durable: DurableLog | undefined;
  taskId(env: Envelope): string;
  stageNamed(name: string): AgentSupervisor | undefined;
  /** The task left the pipeline's last stage (or a route returned null). */
  complete(env: Envelope, output: unknown, stage: AgentSupervisor, attempts: number): void;
  /** The task is quarantined. */
  deadLetter(env: Envelope, stage: AgentSupervisor, code: string, error: ErrorInfo, attempts: number): void;
  /** The stage ended with the task unfinished: dead-lettered without a journal, left pending in one. */
  abandon(env: Envelope, stage: AgentSupervisor, code: string, error: ErrorInfo): void;
}

export interface StageStats {
  readonly name: string;
  /** Tasks that entered this stage's inbox. */
  readonly received: number;
  /** Handler runs that succeeded. */
  readonly completed: number;
  /** Handler runs that threw, rejected or timed out. */
  readonly failed: number;
  readonly retried: number;
  readonly restarts: number;
  readonly deadLettered: number;
  /** Tasks waiting here: the inbox, retries waiting out their backoff, tasks held for their key. */
  readonly inbox: number;
  /** Of those, the ones in the inbox proper: never more than `capacity` (senders wait, or the overflow policy applies). */
  readonly queued: number;
  /** The inbox's bound (mailbox.capacity). */
  readonly capacity: number;
  readonly inFlight: number;
  readonly breaker: BreakerState['status'];
  readonly status: 'starting' | 'running' | 'suspended' | 'terminated';
}

export type Status = StageStats['status'];


