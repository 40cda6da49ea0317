import type { RouteResult } from '../actors/agent.js';
import type { Envelope } from '../actors/envelope.js';
import { BatonError, describe, toErrorInfo } from '../src/errors.js';
import { RingBuffer } from '../src/ring-buffer.js';
import type { AgentSupervisor } from './agent-supervisor.js';
import { DurableStage } from './durable-stage.js';
import { TaskRun } from './task-run.js';

/**
 * What a stage does with a success: encode the output for the journal, ask the router, count it,
 * and hand the task on (to the next stage in the list, a named stage, several for fan-out, or its
 * outcome), waiting in an outbox while the next inbox is full. The run loop is in
 * agent-supervisor.ts; the three layers below it are stage-base.ts, stage-failures.ts and
 * durable-stage.ts. One object (AgentSupervisor), split by concern.
 */
export abstract class StageHandoff extends DurableStage {
  protected succeeded(env: Envelope, run: TaskRun | undefined, probe: boolean, output: unknown): void {
    if (this.durable !== undefined) {
      try {
        env.bytes = this.durable.encode(output, `the output of stage '${this.path}' for task ${this.taskId(env)}`);
      } catch (err) {
        // An output the journal cannot hold is this stage's failure (ERR_INVALID_INPUT from the codec).
        this.failed(run ?? new TaskRun(this, env, this.state, probe), err, err instanceof BatonError ? err.code : 'ERR_TASK_FAILED');
        return;
      }
    }
    let dest: RouteResult = undefined;
    if (this.route !== undefined) {
      try {
        dest = this.route(output, run!);
        if (dest !== null && dest !== undefined && typeof dest !== 'string' && !isNameList(dest)) {
          throw new BatonError(
            'ERR_INVALID_OPTION',
            `the route of stage '${this.path}' returned ${describe(dest)} for task ${this.taskId(env)}; return a stage name, an array of stage names, or null to complete the task.`,
            { stage: this.path },
          );
        }
      } catch (err) {
        // A throwing router is the stage's code failing on this task: a task failure like any other.
        this.failed(run!, err);
        return;
      }
    }
    this.completed++;
    const attempts = env.attempts + 1;
    // While the breaker is open only its probe speaks for the agent: a run that started before the
    // outage and ends well says nothing about now (closing on it re-ran held tasks into the outage).
    if (this.troubled && (probe || this.breaker.status === 'closed')) this.recovered();
    env.attempts = 0;
    env.payload = output;
    if (this.keys !== undefined) this.keys.release(env, this.ready);
    if (this.route === undefined) this.handOn(env, output, attempts);
    else if (dest === null || dest === undefined) this.host.complete(env, output, this.self, attempts);
    else if (typeof dest === 'string') this.routeTo(env, dest);
    else this.fanOut(env, dest, output);
  }

  /** To the next stage in the list, or complete after the last. */
  protected handOn(env: Envelope, output: unknown, attempts: number): void {
    const next = this.next;
    if (next === null) this.host.complete(env, output, this.self, attempts);
    else if (this.durable === undefined && this.outCount === 0 && next.inbox.hasRoom()) next.enqueue(env);
    else this.handoff(env, next);
  }

  private routeTo(env: Envelope, name: string): void {
    const to = this.host.stageNamed(name);
    if (to === undefined) this.unknownRoute(env, name);
    else this.handoff(env, to);
  }

  private fanOut(env: Envelope, names: readonly string[], output: unknown): void {
    if (names.length === 0) return this.host.complete(env, output, this.self, 1);
    if (names.length === 1) return this.routeTo(env, names[0]!);
    if (this.durable !== undefined) {
      const err = new BatonError('ERR_INVALID_OPTION', `stage '${this.path}' routed task ${this.taskId(env)} to ${names.length} stages, but fan-out is not supported in pipelines with a journal yet; route to one stage.`, { stage: this.path });
      this.deadLettered++;
      this.host.deadLetter(env, this.self, err.code, toErrorInfo(err), 1);
      return;
    }
    env.fan ??= { open: 1, outputs: [], dead: undefined };
    env.fan.open += names.length - 1;
    names.forEach((name, i) => this.routeTo(i === 0 ? env : env.branch(output), name));
  }

  private unknownRoute(env: Envelope, name: string): void {
    const err = new BatonError(
      'ERR_UNKNOWN_ADDRESS',
      `stage '${this.path}' routed task ${this.taskId(env)} to '${name}', which is not a stage of this pipeline; return one of its stage names, an array of them, or null to complete the task.`,
      { stage: this.path, address: name },
    );
    this.deadLettered++;
    this.host.deadLetter(env, this.self, err.code, toErrorInfo(err), 1);
  }

  private handoff(env: Envelope, to: AgentSupervisor): void {
    if (this.durable !== undefined) {
      this.durable.push({ op: 'move', id: this.taskId(env), stage: to.name, payload: env.bytes! });
      env.bytes = undefined;
    }
    if (this.outCount === 0 && to.inbox.hasRoom()) {
      to.enqueue(env);
      return;
    }
    if (this.outCount === 0) to.inbox.onRoom(this.wake);
    this.out ??= { envs: new RingBuffer<Envelope>(4), to: new RingBuffer<AgentSupervisor>(4) };
    this.out.envs.push(env);
    this.out.to.push(to);
    this.outCount++;
  }

  /** Hands on outputs that waited for room; false while the next inbox is still full. */
  protected flushOutbox(): boolean {
    const out = this.out!;
    while (this.outCount > 0) {
      const to = out.to.peek()!;
      if (!to.inbox.hasRoom() && !to.terminated) {
        to.inbox.onRoom(this.wake);
        return false;
      }
      out.to.shift();
      this.outCount--;
      to.enqueue(out.envs.shift()!);
    }
    return true;
  }
}

function isNameList(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((name) => typeof name === 'string');
}
