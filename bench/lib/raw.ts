// The practical limit: a run-to-completion dispatcher with one ring-buffer queue per stage, a bound
// per queue, and a loop that drains ready stages in batches. Each task is one message object that
// moves through the stages (as any dispatcher that knows its tasks must have); no supervision, no
// outcomes, no options.

interface Message {
  readonly id: number;
  payload: number;
}

/** A bounded power-of-two FIFO with no growth and no checks: the least a queue can cost. */
export class Ring<T> {
  private items: (T | undefined)[];
  private head = 0;
  size = 0;
  constructor(private readonly mask: number) {
    this.items = new Array<T | undefined>(mask + 1).fill(undefined);
  }
  push(x: T): void {
    this.items[(this.head + this.size++) & this.mask] = x;
  }
  shift(): T {
    const x = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.size--;
    return x;
  }
}

/** Tasks/s through `stages` trivial handlers (x => x + 1); checks the sum of outputs. */
export function rawDispatcher(n: number, stages = 5, capacity = 1024, batch = 64): number {
  const queues = Array.from({ length: stages }, () => new Ring<Message>(2047));
  const handlers = Array.from({ length: stages }, () => (x: number) => x + 1);
  let sent = 0;
  let done = 0;
  let sum = 0;
  const t0 = performance.now();
  while (done < n) {
    while (sent < n && queues[0]!.size < capacity) queues[0]!.push({ id: sent, payload: sent++ });
    for (let s = 0; s < stages; s++) {
      const q = queues[s]!;
      const next = queues[s + 1];
      const h = handlers[s]!;
      for (let k = 0; k < batch && q.size > 0 && (next === undefined || next.size < capacity); k++) {
        const msg = q.shift();
        msg.payload = h(msg.payload);
        if (next === undefined) {
          done++;
          sum += msg.payload;
        } else next.push(msg);
      }
    }
  }
  const secs = (performance.now() - t0) / 1000;
  if (sum !== (n * (n - 1)) / 2 + stages * n) throw new Error('raw dispatcher lost tasks');
  return n / secs;
}
