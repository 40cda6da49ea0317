// The public API of Baton: one barrel of named exports.
export { createSystem, ActorSystem, type SystemOptions, type ChildSpec, type SupervisorSpec, type Terminated, type ShutdownOptions } from './system.js';
export { BatonError, isBatonError, describe as describeValue, type BatonErrorCode, type ErrorInfo } from '../src/errors.js';
export { address, type Address } from '../src/address.js';
export { systemClock, type Clock, type TimerHandle } from '../src/clock.js';
export { simulatedClock, type SimulatedClock } from '../src/simulated-clock.js';
export { seededRandom, type Random } from '../src/random.js';
export { RingBuffer } from '../src/ring-buffer.js';
export type { BatonEvent, BatonEventType, EventListener, EventStream } from '../src/events.js';
export type { DeadLetter, DeadLetters } from '../src/dead-letters.js';
export type { MailboxOptions, OverflowPolicy } from '../src/mailbox.js';
export type { ActorRef, ActorContext, ActorDefinition, Delivery } from '../actors/actor.js';
export type { Logger, LoggerOption } from '../src/logging.js';
export { sqliteJournal, SCHEMA_VERSION, type SqliteJournalOptions } from '../src/journal/sqlite.js';
export { memoryJournal } from '../src/journal/memory.js';
export { isLater, type Journal, type PipelineJournal, type SyncPipelineJournal, type Later, type JournalOp, type StoredTask, type StoredOutcome, type TaskStatus } from '../src/journal/journal.js';

export { agent, type Agent, type AgentOptions, type TaskContext, type RouteResult, type ThreadAgentOptions, type ThreadTaskContext, type ThreadLimits } from '../actors/agent.js';
export { actor, type ActorOptions } from '../actors/actor.js';
export { Pipeline, type PipelineOptions, type PipelineStats, type SendOptions, type SendResult } from '../supervisors/pipeline.js';
export type { Outcome, OutcomesOptions } from '../actors/outcomes.js';
export { outcomeOf as decodeOutcome } from '../supervisors/stored-outcome.js';
export type { AttemptError } from '../actors/envelope.js';

export { oneForOne, oneForAll, restForOne, shouldRestart, restartSet, type SupervisorStrategy, type StrategyOptions, type RestartType, type ExitKind, type StrategyKind } from '../policies/strategy.js';
export { backoff, calculateDelay, type BackoffPolicy, type BackoffOptions } from '../policies/backoff.js';
export { intensity, recordRestart, type IntensityPolicy, type RestartWindow } from '../policies/intensity.js';
export { breakerPolicy, onFreshFailure, onProbeFailure, onSuccess, startProbe, chargesProbe, probeAgainNow, type BreakerPolicy, type BreakerOptions, type BreakerState } from '../policies/breaker.js';
export type { AgentPolicyOptions, RetryOptions, RestartOptions } from '../policies/agent-policy.js';
export type { StageStats } from '../supervisors/agent-supervisor.js';
export { supervise, CircuitOpenError, type SuperviseOptions, type SupervisedTask, type SupervisedContext, type SupervisedDeadLetter, type Supervised, type FailureVerdict, type TaskFn } from '../supervisors/supervise.js';
export { isControlFlow, isAbort } from '../supervisors/control-flow.js';
