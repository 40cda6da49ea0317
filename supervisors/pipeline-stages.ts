import { assertName } from '../src/address.js';
import { isBranchId } from './join-record.js';
import { BatonError, describe } from '../src/errors.js';
import type { Logger } from '../src/logging.js';
import { agentPolicy, AGENT_POLICY_KEYS } from '../policies/agent-policy.js';
import { checkKeys } from '../src/options.js';
import { AgentSupervisor, type StageHost } from './agent-supervisor.js';
import type { Agent } from '../actors/agent.js';
import type { PipelineOptions, SendOptions } from './pipeline-types.js';
import { ThreadPool } from './thread-pool.js';
import type { StageBudget } from './stage-budget.js';

// What a pipeline is made from, checked: its options, its stages (one AgentSupervisor per agent), and
// the options of each send.

/** Checks `spawnPipeline`'s options; returns the pipeline's name. */
export function checkPipelineOptions(options: PipelineOptions): string {
  if (options === null || typeof options !== 'object') {
    throw new BatonError('ERR_INVALID_OPTION', `spawnPipeline(options) needs { name, stages }; got ${describe(options)}.`, { option: 'pipeline' });
  }
  assertName(options.name, 'pipeline name');
  const name = options.name;
  checkKeys(options, ['name', 'stages', 'defaults', 'supervisor', 'keepCompletedMs', 'budget'], `pipeline '${name}'`);
  if (options.defaults !== undefined) {
    if (options.defaults === null || typeof options.defaults !== 'object') throw new BatonError('ERR_INVALID_OPTION', `pipeline '${name}': defaults must be an object of agent options; got ${describe(options.defaults)}.`, { option: `${name}.defaults` });
    checkKeys(options.defaults, AGENT_POLICY_KEYS, `pipeline '${name}' defaults`);
  }
  if (!Array.isArray(options.stages) || options.stages.length === 0) {
    throw new BatonError('ERR_INVALID_OPTION', `pipeline '${name}': stages must be a non-empty array of agent(...) definitions; got ${describe(options.stages)}.`, { option: `${name}.stages` });
  }
  return name;
}

/**
 * One AgentSupervisor per agent, in order, registered in `byName` (not yet wired or started). A
 * thread agent's stage gets its worker pool's `run` as its handler; the pool goes into `pools`.
 */
export function buildStages(name: string, options: PipelineOptions, host: StageHost, log: Logger, byName: Map<string, AgentSupervisor>, pools: ThreadPool[], sharedBudget?: StageBudget): AgentSupervisor[] {
  const defaults = options.defaults ?? {};
  // Validated even if every stage overrides them; shared by every stage with no policy of its own.
  const shared = agentPolicy({}, defaults, `pipeline '${name}' defaults`);
  return options.stages.map((def, i) => {
    if (def === null || typeof def !== 'object' || (def as Agent).kind !== 'agent') {
      throw new BatonError('ERR_INVALID_OPTION', `pipeline '${name}': stages[${i}] must be made with agent({...}); got ${describe(def)}.`, { option: `${name}.stages[${i}]` });
    }
    if (byName.has(def.name)) {
      throw new BatonError('ERR_DUPLICATE_NAME', `pipeline '${name}' has two stages named '${def.name}'; give each stage a unique name.`, { pipeline: name, stage: def.name });
    }
    if (def.isolation === 'thread') def = threaded(def, `${name}/${def.name}`, defaults.concurrency, log, pools);
    const policy = hasOwnPolicy(def) ? agentPolicy(def, defaults, `stage '${name}/${def.name}'`) : shared;
    const stage = new AgentSupervisor(host, def, policy, name, log, sharedBudget);
    byName.set(def.name, stage);
    return stage;
  });
}

/**
 * A thread agent as its stage runs it: the handler is its pool's `run`. Its concurrency, unless
 * set (on the agent or in the pipeline's defaults), is its thread count: one task per worker at a
 * time, so a CPU-bound handler on 2 threads keeps both busy and no task waits behind another in a
 * worker while a third worker could start it.
 */
function threaded(def: Agent, path: string, defaultConcurrency: number | undefined, log: Logger, pools: ThreadPool[]): Agent {
  const threads = def.threads ?? 1;
  const concurrency = def.concurrency ?? defaultConcurrency ?? threads;
  const pool = new ThreadPool({ stage: path, module: def.module!, threads, concurrency, resourceLimits: def.resourceLimits, startTimeoutMs: def.startTimeoutMs ?? 30_000, log });
  pools.push(pool);
  // The pool's readiness is the stage's init: no task starts (and no timeoutMs ticks) until its workers have loaded.
  return Object.freeze({ ...def, handle: pool.run, init: () => pool.ready, concurrency });
}

/** The error for bad `send` options, or undefined if they are fine. */
export function checkSendOptions(pipeline: string, o: SendOptions): BatonError | undefined {
  if (typeof o !== 'object' || o === null) return new BatonError('ERR_INVALID_OPTION', `send options must be an object { key?, id? }; got ${describe(o)}.`, { option: 'send' });
  for (const k of ['key', 'id'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) {
      return new BatonError('ERR_INVALID_OPTION', `pipeline '${pipeline}': send option ${k} must be a non-empty string; got ${describe(v)}.`, { option: k, value: v });
    }
  }
  // '<pipeline>-<seq>' is the id of a task sent without one: a user id of that form could be given
  // to a later task too, and the journal keeps one task per id.
  const id = o.id;
  if (id !== undefined && id.startsWith(`${pipeline}-`) && /^\d+$/.test(id.slice(pipeline.length + 1))) {
    return new BatonError(
      'ERR_INVALID_OPTION',
      `pipeline '${pipeline}': send option id ${describe(id)} has the form '${pipeline}-<number>', which names tasks sent without an id; choose another id (a document key, a UUID).`,
      { option: 'id', value: id },
    );
  }
  // '<id>#fan<n>' names branch n of a fanned-out task in the journal (fan-join.ts).
  if (id !== undefined && isBranchId(id)) {
    return new BatonError('ERR_INVALID_OPTION', `pipeline '${pipeline}': send option id ${describe(id)} ends in '#fan<n>', the form that names the branches of a fanned-out task; choose another id.`, { option: 'id', value: id });
  }
  return undefined;
}

const hasOwnPolicy = (def: Agent): boolean => AGENT_POLICY_KEYS.some((k) => (def as unknown as Record<string, unknown>)[k] !== undefined);
