import { decodeOutcome, type Agent, type Outcome, type Pipeline, type PipelineOptions, type SendResult, BatonError, type BatonEvent, type Journal, memoryJournal, simulatedClock, type SimulatedClock, createSystem, type ActorSystem } from '../system/index.js';
import type { FaultPlan } from './fault-plan.js';
import { apply, callLog, type HandlerCall } from './faults.js';
import { killableJournal, type KillableJournal } from './killable-journal.js';

/**
 * One scenario: a pipeline on simulated time, a workload sent with back-pressure, a fault plan
 * applied, kills carried out; everything observable is recorded for the invariants.
 */
export interface ScenarioOptions<I> {
  /** The pipeline's agents, unwrapped: the plan is applied here. */
  readonly stages: readonly Agent[];
  readonly inputs: readonly I[];
  /** Optional; defaults to no faults. */
  readonly plan?: FaultPlan;
  /** Everything a pipeline takes besides its name and stages. Optional. */
  readonly pipeline?: Omit<PipelineOptions, 'name' | 'stages'>;
  /** Optional; defaults to no key. */
  readonly keyOf?: (input: I, index: number) => string | undefined;
  /** Optional; defaults to `t<index>`. */
  readonly idOf?: (input: I, index: number) => string;
  /** See ApplyOptions.taskIdOf: keeps one-parameter handlers on Baton's fast lane. Optional. */
  readonly taskIdOf?: (input: unknown) => string | undefined;
  /** A journal to run on. Optional; defaults to none, or to a memory journal when the plan has kills. */
  readonly journal?: Journal;
  /** Seeds the system's random source (backoff jitter). Optional; defaults to the plan's seed, else 1. */
  readonly seed?: number;
  /** Simulated time after which the scenario gives up (and the report says what was still pending). Optional; defaults to one hour. */
  readonly limitMs?: number;
}

/** A stage's inbox bound and the most tasks seen in its inbox during a scenario (the inboxBounds invariant compares them). */
export interface StagePeak {
  readonly capacity: number;
  /** The most tasks ever seen waiting in the stage's inbox proper (not counting retries or key-held tasks). */
  peak: number;
}

/** What a scenario did: the input to `invariants.check`. */
export interface Recording {
  readonly stages: readonly string[];
  readonly plan: FaultPlan;
  /** Stages run in list order with no route (so a task's calls move forward only). */
  readonly linear: boolean;
  readonly orderByKey: ReadonlySet<string>;
  /** Ids whose send was acknowledged (accepted, duplicate of a pending one, or dropped), in order. */
  readonly accepted: string[];
  readonly sendResults: Map<string, SendResult>;
  readonly keys: Map<string, string | undefined>;
  readonly outcomes: Outcome[];
  /**
   * Ids of outcomes read back from the journal at the end: tasks a killed incarnation finished and
   * recorded, but died before it heard the journal's acknowledgement, so no live incarnation
   * reported them (only with an asynchronous journal). Their outcomes are in `outcomes` too.
   */
  readonly fromJournal: string[];
  readonly calls: readonly HandlerCall[];
  readonly events: BatonEvent[];
  readonly peaks: Map<string, StagePeak>;
  kills: number;
  /** For each kill, how many events had been recorded by then (a new incarnation starts with fresh breakers). */
  readonly killedAtEvent: number[];
  /** False when the limit passed with tasks still pending. */
  drained: boolean;
  /** The pipeline's own failure (ERR_PIPELINE_FAILED), if it failed. */
  failure: BatonError | undefined;
  /** Simulated time at the end. */
  endedAt: number;
}

const turn = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/**
 * Runs a pipeline over `inputs` on simulated time with a fault plan: sends with back-pressure, lets the
 * runtime settle at each instant and jumps to the next timer, carries out planned kills (a new
 * incarnation on the same journal, unacknowledged sends sent again), and returns a Recording for
 * `invariants.check`. Throws ERR_INVALID_OPTION for a bad plan.
 */
export async function runScenario<I>(options: ScenarioOptions<I>): Promise<Recording> {
  const plan: FaultPlan = options.plan ?? { seed: options.seed ?? 1, stages: {} };
  const kills = [...(plan.kills ?? [])].sort((a, b) => a - b);
  const underlying = options.journal ?? (kills.length > 0 ? memoryJournal() : undefined);
  const clock: SimulatedClock = simulatedClock();
  const limitMs = options.limitMs ?? 3_600_000;
  const stages = apply(plan, options.stages, { clock, ...(options.taskIdOf ? { taskIdOf: options.taskIdOf } : {}) });
  const log = callLog(stages);
  const calls = log.calls;
  const defaults = options.pipeline?.defaults;
  const orderByKey = new Set(options.stages.filter((s) => (s.orderByKey ?? defaults?.orderByKey) === true).map((s) => s.name));
  const rec: Recording = {
    stages: options.stages.map((s) => s.name),
    plan,
    linear: options.stages.every((s) => s.route === undefined),
    orderByKey,
    accepted: [],
    sendResults: new Map(),
    keys: new Map(),
    outcomes: [],
    fromJournal: [],
    calls,
    events: [],
    peaks: new Map(),
    kills: 0,
    killedAtEvent: [],
    drained: false,
    failure: undefined,
    endedAt: 0,
  };

  let epoch = 0;
  let system!: ActorSystem;
  let pipe!: Pipeline<I, unknown>;
  let journal: KillableJournal | undefined;
  const sample = (): void => {
    for (const s of pipe.stats().stages) {
      let peak = rec.peaks.get(s.name);
      if (peak === undefined) rec.peaks.set(s.name, (peak = { capacity: s.capacity, peak: 0 }));
      if (peak !== undefined && s.queued > peak.peak) peak.peak = s.queued;
    }
  };
  const spawn = (): void => {
    const mine = ++epoch;
    journal = underlying === undefined ? undefined : killableJournal(underlying);
    system = createSystem({ logger: false, clock, random: options.seed ?? plan.seed, ...(journal ? { journal } : {}) });
    system.events.on((e) => {
      if (mine === epoch) rec.events.push(e);
    });
    pipe = system.spawnPipeline<I, unknown>({ ...options.pipeline, name: 'scenario', stages });
    pipe.onOutcome((o) => {
      if (mine === epoch) rec.outcomes.push(o);
    });
  };
  spawn();

  // The kill is carried out between turns (at the first turn boundary after the n-th handler call),
  // not inside the call: the dead incarnation must stop calling handlers when its journal stops,
  // and only a turn boundary stops it. (Known: so a kill lands a little after call n, and not always
  // on the same call from run to run; see the session-3 note.)
  let killDue = false;
  log.onCall = () => {
    if (!killDue && kills.length > 0 && calls.length >= kills[0]!) {
      kills.shift();
      killDue = true;
    }
    sample();
  };
  const kill = async (): Promise<void> => {
    killDue = false;
    rec.kills++;
    rec.killedAtEvent.push(rec.events.length);
    journal!.kill();
    // The new incarnation first (spawn moves the epoch on: from here the old one's outcomes and
    // events are a dead process's), so a sender woken by the old one's end finds the new one.
    const dead = system;
    spawn();
    await dead.shutdown({ drainMs: 0 }).catch(() => undefined);
  };

  // The producer: sends in order, waiting for room; an acknowledgement from an incarnation that was
  // killed before it answered is void, so the same id is sent again (a client retrying after a crash).
  let sent = false;
  const producer = (async () => {
    for (let i = 0; i < options.inputs.length; i++) {
      const input = options.inputs[i]!;
      const id = options.idOf?.(input, i) ?? `t${i}`;
      const key = options.keyOf?.(input, i);
      rec.keys.set(id, key);
      for (;;) {
        const mine = epoch;
        let result: SendResult | undefined;
        try {
          result = await pipe.send(input, { id, ...(key === undefined ? {} : { key }) });
        } catch (err) {
          if (mine === epoch && !(err instanceof BatonError && err.code === 'ERR_STOPPED')) throw err;
          if (mine === epoch) return; // the pipeline failed or stopped for good: nothing more is accepted
        }
        if (mine !== epoch) continue;
        if (result !== undefined) {
          rec.sendResults.set(id, result);
          if (result !== 'rejected' && !rec.accepted.includes(id)) rec.accepted.push(id);
        }
        sample();
        break;
      }
    }
  })().finally(() => (sent = true));
  let producerError: unknown;
  producer.catch((err: unknown) => (producerError = err));

  const pending = (): number => pipe.stats().pending;
  let idle = 0;
  let lastProgress = -1;
  for (;;) {
    // Let the runtime finish what it can at this instant before time moves: until a few turns pass
    // with no handler call, outcome or event (at most 50), as real ready work would before a timer.
    // (An asynchronous journal's calls and answers count as progress too.)
    const progress = (): number => calls.length + rec.outcomes.length + rec.events.length + (journal?.activity ?? 0);
    for (let quiet = 0, i = 0; quiet < 3 && i < 50; i++) {
      const before = progress();
      await turn();
      quiet = progress() === before ? quiet + 1 : 0;
      if (killDue) break;
      // A remote journal (NATS) answers in real milliseconds, not in a turn: wait for it, not counted.
      if ((journal?.inFlight ?? 0) > 0) {
        await new Promise((r) => setTimeout(r, 1));
        quiet = 0;
        i--;
      }
    }
    if (killDue) {
      await kill();
      continue;
    }
    if ((sent && pending() === 0) || pipe.stats().status === 'failed' || clock.now() >= limitMs) break;
    sample();
    // Jump to the next timer (a backoff, a deadline, a probe, a delay): time lands exactly on the
    // boundaries the runtime set. With no timer, moving time changes nothing: after a few rounds
    // with no progress at all the run is over (the progress invariant reports any task left
    // without an outcome), instead of stepping through limitMs of simulated time.
    const next = clock.nextAt();
    if (next === undefined) {
      if ((journal?.inFlight ?? 0) > 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const now = progress() + rec.accepted.length;
      idle = now === lastProgress ? idle + 1 : 0;
      lastProgress = now;
      if (sent || idle >= 20) break;
      await turn();
      continue;
    }
    idle = 0;
    await clock.advance(Math.max(0, next - clock.now()));
  }
  if (producerError !== undefined) throw producerError;
  if (underlying !== undefined && rec.kills > 0) {
    const reported = new Set(rec.outcomes.map((o) => o.id));
    for (const id of rec.accepted) {
      if (reported.has(id)) continue;
      const stored = underlying.openPipeline('scenario').outcome(id);
      if (stored === undefined) continue;
      rec.outcomes.push(decodeOutcome(stored));
      rec.fromJournal.push(id);
    }
  }
  rec.drained = sent && pending() === 0;
  rec.endedAt = clock.now();
  try {
    if (rec.drained || pipe.stats().status === 'failed') {
      await pipe.drain().catch((err: unknown) => {
        if (err instanceof BatonError) rec.failure = err;
      });
    }
  } finally {
    epoch++; // what the final shutdown does to unfinished tasks (ERR_STOPPED) is not the scenario's outcome
    await system.shutdown({ drainMs: 0 }).catch(() => undefined);
    if (options.journal === undefined) underlying?.close();
  }
  return rec;
}
