import { createSystem, simulatedClock, type ActorSystem, type BatonEvent, type Outcome, type Pipeline, type SimulatedClock } from '../../system/index.js';

/** A system on simulated time with a fixed seed and no logs, plus everything it emitted. */
export function testSystem(seed = 1): { system: ActorSystem; clock: SimulatedClock; events: BatonEvent[] } {
  const clock = simulatedClock();
  const system = createSystem({ logger: false, clock, random: seed });
  const events: BatonEvent[] = [];
  system.events.on((e) => events.push(e));
  return { system, clock, events };
}

/** Collects a pipeline's outcomes from now on. */
export function collect<O>(pipeline: Pipeline<any, O>): Outcome<O>[] {
  const out: Outcome<O>[] = [];
  pipeline.onOutcome((o) => out.push(o));
  return out;
}

/** Lets the scheduler (setImmediate) and promise chains run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Advances simulated time in steps until the pipeline has drained (or `limitMs` passes). */
export async function drainOn(clock: SimulatedClock, pipeline: Pipeline<any, any>, limitMs = 3_600_000, stepMs = 50): Promise<void> {
  let drained = false;
  const done = pipeline.drain().then(() => (drained = true));
  for (let t = 0; t <= limitMs && !drained; t += stepMs) {
    await settle(2);
    if (drained) break;
    await clock.advance(stepMs);
  }
  await done;
}
