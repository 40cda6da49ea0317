import fc from 'fast-check';

/**
 * fast-check settings that every Baton property shares, read from the environment so that a CI
 * failure replays with one variable:
 *
 *   BATON_REPLAY=<seed>:<path>   replay one counterexample (both printed when a property fails)
 *   BATON_PROPERTY_SCALE=<n>     multiply every property's run count (e.g. 10 for a nightly soak)
 *   BATON_PROPERTY_SEED=<seed>   start every property from this seed (a whole run replays)
 */
export interface PropertyRunOptions {
  /** Runs for this property at scale 1. Optional; defaults to 100. */
  readonly numRuns?: number;
  /** Passed on to fast-check as-is (e.g. `endOnFailure`, `interruptAfterTimeLimit`). */
  readonly extra?: fc.Parameters<unknown>;
}

/** fast-check's parameters for a property: `numRuns` scaled by BATON_PROPERTY_SCALE, the seed from BATON_PROPERTY_SEED, and the counterexample from BATON_REPLAY when set. */
export function propertyParameters<T>(options: PropertyRunOptions = {}, env: NodeJS.ProcessEnv = process.env): fc.Parameters<T> {
  const scale = Number(env['BATON_PROPERTY_SCALE'] ?? 1);
  const numRuns = Math.max(1, Math.round((options.numRuns ?? 100) * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
  const params: fc.Parameters<T> = { numRuns, ...(options.extra as fc.Parameters<T> | undefined) };
  const replay = env['BATON_REPLAY'];
  if (replay !== undefined && replay !== '') {
    const at = replay.indexOf(':');
    const seed = Number(at < 0 ? replay : replay.slice(0, at));
    if (!Number.isInteger(seed)) throw new Error(`BATON_REPLAY must be <seed>:<path> as printed by a failed property; got '${replay}'.`);
    return { ...params, seed, ...(at < 0 ? {} : { path: replay.slice(at + 1) }), endOnFailure: true };
  }
  const seed = env['BATON_PROPERTY_SEED'];
  if (seed !== undefined && seed !== '') return { ...params, seed: Number(seed) };
  return params;
}

/**
 * Runs a property like `fc.assert`, and on failure puts the replay command first in the message:
 * the seed and shrunk path fast-check found, as one environment variable.
 */
export async function checkProperty<T>(property: fc.IAsyncProperty<T> | fc.IProperty<T>, options: PropertyRunOptions = {}): Promise<void> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, propertyParameters<T>(options));
  if (!details.failed) return;
  const replay = `BATON_REPLAY=${details.seed}:${details.counterexamplePath ?? ''}`;
  const report = fc.defaultReportMessage(details) ?? 'the property failed';
  const error = new Error(`${report}\n\nReplay just this counterexample: ${replay} npx vitest run <this test file>`);
  (error as Error & { cause?: unknown }).cause = details.errorInstance;
  throw error;
}
