import { parentPort, workerData } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { unserialisable } from '../src/codec.js';
import { toErrorInfo } from '../src/errors.js';

/**
 * The worker side of a thread agent's pool (thread-pool.ts has the contract). Loaded in a worker
 * thread only: it imports the agent's module, runs its `init()` once, says 'ready', then runs the
 * batches of tasks it is sent and answers in batches. Before each handler call it writes, in memory
 * shared with the pool, how many tasks it has started and which one runs synchronously now: if the
 * worker dies, the pool reads them to charge the task that was running and give the others back.
 */

interface WorkerData {
  readonly module: string;
  readonly stage: string;
  readonly slots: SharedArrayBuffer;
}

const data = workerData as WorkerData;
const port = parentPort!;
/** [0]: the ordinal of the task whose handler runs synchronously now, -1 for none; [1]: tasks started. */
const slots = new Float64Array(data.slots);
const packr = new Packr({ useRecords: false, moreTypes: true });

type Handle = (input: unknown, ctx: object) => unknown;

const mod = (await import(data.module)) as { handle?: unknown; default?: unknown; init?: unknown };
const handle = (typeof mod.handle === 'function' ? mod.handle : mod.default) as Handle | undefined;
if (typeof handle !== 'function') {
  throw new TypeError(`module ${data.module} exports no handle(input, ctx) function (nor a default one); export one.`);
}
const state: unknown = typeof mod.init === 'function' ? await (mod.init as () => unknown)() : undefined;

/** Answers waiting to go back: [ordinal, ok (1) or failed (0), output or [name, message, code]], flat. */
let out: unknown[] = [];
let flushing = false;

function flush(): void {
  flushing = false;
  if (out.length === 0) return;
  // pack() answers a view into msgpackr's shared pool: copy it before the next pack, and transfer the copy.
  const bytes = new Uint8Array(packr.pack(out));
  out = [];
  port.postMessage(bytes, [bytes.buffer]);
}

function answer(ordinal: number, ok: boolean, value: unknown, taskId: string): void {
  if (ok) {
    const problem = unserialisable(value);
    if (problem !== undefined) {
      ok = false;
      // The fourth item says Baton refused it (ERR_INVALID_INPUT is then the dead-letter code), not the handler.
      value = ['BatonError', `the output of stage '${data.stage}' for task ${taskId} cannot cross back from its worker thread: ${problem}. Return plain data (objects, arrays, strings, numbers, booleans, null, Date, bigint, Uint8Array, Set).`, 'ERR_INVALID_INPUT', 1];
    }
  } else {
    const info = toErrorInfo(value);
    value = [info.name, info.message, info.code ?? null];
  }
  out.push(ordinal, ok ? 1 : 0, value);
}

port.on('message', (bytes: Uint8Array) => {
  const batch = packr.unpack(bytes) as unknown[];
  // Laid out by the pool: [ordinal, taskId, key, attempt, input] per task.
  for (let i = 0; i < batch.length; i += 5) {
    const ordinal = batch[i] as number;
    const taskId = batch[i + 1] as string;
    const ctx = { taskId, key: (batch[i + 2] as string | null) ?? undefined, attempt: batch[i + 3] as number, stage: data.stage, state };
    slots[1] = ordinal + 1;
    slots[0] = ordinal;
    let result: unknown;
    try {
      result = handle(batch[i + 4], ctx);
    } catch (err) {
      slots[0] = -1;
      answer(ordinal, false, err, taskId);
      continue;
    }
    slots[0] = -1;
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      Promise.resolve(result as PromiseLike<unknown>).then(
        (v) => settleLater(ordinal, true, v, taskId),
        (e: unknown) => settleLater(ordinal, false, e, taskId),
      );
    } else answer(ordinal, true, result, taskId);
  }
  flush();
});

/** Async answers that settle in one turn of the event loop go back together. */
function settleLater(ordinal: number, ok: boolean, value: unknown, taskId: string): void {
  answer(ordinal, ok, value, taskId);
  if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
}

port.postMessage('ready');
