// The public API of Baton: one barrel of named exports.
export { createSystem, ActorSystem, type SystemOptions, type ChildSpec, type SupervisorSpec, type Terminated, type ShutdownOptions } from './system.js';
export { BatonError, isBatonError, type BatonErrorCode, type ErrorInfo } from './errors.js';
export { address, type Address } from './address.js';
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export { simulatedClock, type SimulatedClock } from './simulated-clock.js';
export { seededRandom, type Random } from './random.js';
export { RingBuffer } from './ring-buffer.js';
export type { BatonEvent, BatonEventType, EventListener, EventStream } from './events.js';
export type { DeadLetter, DeadLetters } from './dead-letters.js';
export type { MailboxOptions, OverflowPolicy } from './mailbox.js';
export type { ActorRef, ActorContext, ActorDefinition, Delivery } from './actor-cell.js';
export type { Logger, LoggerOption } from './logging.js';
export { sqliteJournal, SCHEMA_VERSION, type SqliteJournalOptions } from './journal/sqlite.js';
export { memoryJournal } from './journal/memory.js';
export type { Journal, PipelineJournal, JournalOp, StoredTask, StoredOutcome, TaskStatus } from './journal/journal.js';

export { agent, type Agent, type AgentOptions, type TaskContext, type RouteResult } from '../actors/agent.js';
export { actor, type ActorOptions } from '../actors/actor.js';
export { Pipeline, type PipelineOptions, type PipelineStats, type SendOptions, type SendResult } from '../actors/pipeline.js';
export type { Outcome, OutcomesOptions } from '../actors/outcomes.js';
export type { AttemptError } from '../actors/envelope.js';

export { oneForOne, oneForAll, restForOne, shouldRestart, restartSet, type SupervisorStrategy, type StrategyOptions, type RestartType, type ExitKind, type StrategyKind } from '../supervisors/strategy.js';
export { backoff, calculateDelay, type BackoffPolicy, type BackoffOptions } from '../supervisors/backoff.js';
export { intensity, recordRestart, type IntensityPolicy, type RestartWindow } from '../supervisors/intensity.js';
export { breakerPolicy, onFreshFailure, onProbeFailure, onSuccess, startProbe, chargesProbe, probeAgainNow, type BreakerPolicy, type BreakerOptions, type BreakerState } from '../supervisors/breaker.js';
export type { AgentPolicyOptions, RetryOptions, RestartOptions } from '../supervisors/agent-policy.js';
export type { StageStats } from '../supervisors/agent-supervisor.js';
export { supervise, CircuitOpenError, type SuperviseOptions, type SupervisedTask, type SupervisedContext, type SupervisedDeadLetter, type Supervised, type FailureVerdict, type TaskFn } from '../supervisors/supervise.js';
export { isControlFlow, isAbort } from '../supervisors/control-flow.js';
