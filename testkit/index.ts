// baton-actors/testkit: fault-test a Baton pipeline with fast-check. Needs fast-check (a peer dependency).
export { faults, apply, callLog, type HandlerCall, type CallLog, type ApplyOptions } from './faults.js';
export { InjectedFault, type Fault, type FaultKind, type FaultPlan } from './fault-plan.js';
export { runScenario, type ScenarioOptions, type Recording, type StagePeak } from './scenario.js';
export { invariants, check, assertAll, INVARIANTS, InvariantViolation, type InvariantName, type InvariantReport, type Violation, type CheckOptions } from './invariants.js';
export { arbitraries, buildPipeline, type PipelineShape, type StageShape, type WorkItem, type FaultPlanConstraints, type ShapeConstraints, type WorkloadConstraints } from './arbitraries.js';
export { killableJournal, type KillableJournal } from './killable-journal.js';
export { startNatsServer, natsServerBinary, natsMissing, warnNatsMissing, type NatsServer } from './nats-server.js';
export { checkProperty, propertyParameters, type PropertyRunOptions } from './property.js';
export { simulatedClock, type SimulatedClock } from '../system/index.js';
export { seededRandom, type Random } from '../system/index.js';
