// The practical limits for async handlers, as raw.ts is for sync ones: five stages of
// `async x => x + 1`, one bounded ring queue each, up to `concurrency` runs in flight per stage, and a
// microtask turn that starts waiting runs in batches. No supervision, timeouts, retries, outcomes or
// rejection handling. Two variants:
// - numbers: the queues hold bare numbers and each stage has one then() callback, made once;
// - messages: each task is one object that moves through the stages (as in raw.ts: a dispatcher that
//   knows its tasks must carry them), so each run needs its own callback to know which task settled.
//   The difference between the two is the least that knowing the task costs on this path.

import { Ring } from './raw.js';

interface Message {
  readonly id: number;
  payload: number;
}

/** Tasks/s through `stages` async handlers; checks the sum of outputs. */
export function rawAsyncDispatcher(n: number, mode: 'numbers' | 'messages' = 'numbers', stages = 5, concurrency = 64, capacity = 1024): Promise<number> {
  const handle = async (x: number): Promise<number> => x + 1;
  const queues = Array.from({ length: stages }, () => new Ring<number | Message>(2047));
  const inFlight = new Array<number>(stages).fill(0);
  const resolved = Promise.resolve();
  const messages = mode === 'messages';
  let sent = 0;
  let done = 0;
  const sum = new Float64Array(1); // not a captured `let`: see baton.ts
  let pending = false;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const turn = (): void => {
      pending = false;
      while (sent < n && queues[0]!.size < capacity) queues[0]!.push(messages ? { id: sent, payload: sent++ } : sent++);
      for (let s = 0; s < stages; s++) {
        const q = queues[s]!;
        const next = queues[s + 1];
        const cb = settled[s]!;
        // Room downstream is reserved by in-flight runs too, so a queue never passes its bound.
        while (inFlight[s]! < concurrency && q.size > 0 && (next === undefined || next.size + inFlight[s]! < capacity)) {
          inFlight[s]!++;
          if (!messages) void handle(q.shift() as number).then(cb);
          else {
            const msg = q.shift() as Message;
            void handle(msg.payload).then((out) => {
              msg.payload = out;
              cb(msg);
            });
          }
        }
      }
    };
    const settled = Array.from({ length: stages }, (_, s) => (item: number | Message): void => {
      inFlight[s]!--;
      if (s === stages - 1) {
        sum[0]! += typeof item === 'number' ? item : item.payload;
        if (++done === n) {
          if (sum[0] !== (n * (n - 1)) / 2 + stages * n) reject(new Error('raw async dispatcher lost tasks'));
          else resolve(n / ((performance.now() - t0) / 1000));
          return;
        }
      } else queues[s + 1]!.push(item);
      if (!pending) {
        pending = true;
        void resolved.then(turn);
      }
    });
    turn();
  });
}
