// Its init never settles and keeps the worker's event loop busy (a connection that never answers):
// the worker neither becomes ready nor exits.
export function handle(x) {
  return x;
}
export function init() {
  return new Promise(() => setInterval(() => undefined, 1_000));
}
