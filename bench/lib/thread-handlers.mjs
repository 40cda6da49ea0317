// Handler modules for the thread benchmarks (plain .mjs: a worker thread loads it as is).
// Piscina calls the default export with one task; Baton's thread agents call `handle`.

/** The trivial handler: what crossing the thread boundary costs, and nothing else. */
export function handle(x) {
  if (typeof x === 'number') return x + 1;
  return spin(x.spinMs);
}

export default function (x) {
  return x + 1;
}

/** Busy for `ms` of wall-clock time, without yielding: a CPU-bound handler. */
export function spin(ms) {
  const until = performance.now() + ms;
  let n = 0;
  while (performance.now() < until) n++;
  return n;
}
