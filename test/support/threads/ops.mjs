// A thread agent's module for the tests (plain .mjs: a worker thread loads it without a loader).
// The input says what to do: a number is doubled; { op } runs away in one of the ways a worker can.
export function handle(input, ctx) {
  if (typeof input === 'number') return input * 2;
  switch (input.op) {
    case 'loop':
      for (;;) {} // never yields: only terminating the worker ends it
    case 'hog': {
      const hoard = [];
      for (;;) hoard.push(new Array(100_000).fill(ctx.attempt)); // grows until the heap limit kills the worker
    }
    case 'exit':
      process.exit(3);
    case 'timer-throw':
      setTimeout(() => {
        throw new Error('uncaught in a timer');
      }, 5);
      return new Promise(() => undefined);
    case 'throw':
      throw new RangeError(`bad input ${input.n}`);
    case 'fn':
      return { ok: true, later: () => 1 };
    case 'ctx':
      return { taskId: ctx.taskId, key: ctx.key ?? null, attempt: ctx.attempt, stage: ctx.stage, state: ctx.state };
    case 'async':
      return new Promise((resolve) => setTimeout(() => resolve(input.n), 1));
    case 'sleep':
      return new Promise((resolve) => setTimeout(() => resolve(input.n), input.ms));
    default:
      throw new Error(`unknown op ${input.op}`);
  }
}

export function init() {
  return { loaded: true };
}
