#!/usr/bin/env bash
# The consumer test: the package as a user gets it. npm pack (which builds dist/ through `prepare`),
# install the tarball into a scratch project, and use it from ESM, from CommonJS, from TypeScript
# (moduleResolution node16 and bundler), run the testkit, and run the CLI. Runs on whatever `node`
# is first on PATH (CI runs it on the machine's Node 20 and on Node 24).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "consumer test on Node $(node --version) in $tmp"
(cd "$root" && npm pack --silent --pack-destination "$tmp" >/dev/null)
cd "$tmp"
npm init -y >/dev/null
# --ignore-scripts: better-sqlite3 would compile from source a third time (about a minute); the
# project's build, made for this same Node, is copied in instead.
npm install --silent --no-audit --no-fund --ignore-scripts ./baton-actors-*.tgz fast-check@4 typescript@5.9 @types/node@20 @opentelemetry/api@1 >/dev/null
cp -r "$root/node_modules/better-sqlite3/build" node_modules/better-sqlite3/

cat > esm.mjs <<'JS'
import { agent, createSystem, sqliteJournal } from 'baton-actors';
import { runScenario, assertAll } from 'baton-actors/testkit';
const system = createSystem({ logger: false, journal: sqliteJournal('./consumer.db') });
const pipe = system.spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle: (x) => x + 1 }), agent({ name: 'b', handle: async (x) => x * 2 }), agent({ name: 'c', handle: (x) => `out ${x}` })] });
const outputs = [];
pipe.onOutcome((o) => outputs.push(o.output));
await pipe.sendMany([1, 2, 3]);
await pipe.drain();
await system.shutdown();
if (outputs.sort().join() !== 'out 4,out 6,out 8') throw new Error(`esm: unexpected outputs ${outputs}`);
const rec = await runScenario({ stages: [agent({ name: 's', handle: (x) => x })], inputs: [1, 2, 3] });
assertAll(rec);
console.log('esm: 3 tasks through 3 stages on SQLite, and a testkit scenario: ok');
JS
node esm.mjs

cat > parse.mjs <<'JS'
export function handle(input) {
  if (input === 'spin') for (;;) {} // never yields: only a terminated worker ends it
  return input * 3;
}
JS
cat > threads.mjs <<'JS'
import { agent, createSystem } from 'baton-actors';
const system = createSystem({ logger: false });
const pipe = system.spawnPipeline({ name: 'p', stages: [agent({ name: 'parse', module: new URL('./parse.mjs', import.meta.url), threads: 2, timeoutMs: 300, retry: { maxAttempts: 1 } })] });
const outcomes = [];
pipe.onOutcome((o) => outcomes.push(o));
await pipe.send('spin', { id: 'spin' });
for (let i = 1; i <= 1000; i++) await pipe.send(i, { id: `n${i}` });
await pipe.drain();
await system.shutdown();
const spin = outcomes.find((o) => o.id === 'spin');
const done = outcomes.filter((o) => o.status === 'completed' && o.output === Number(o.id.slice(1)) * 3).length;
if (spin?.status !== 'dead-lettered' || spin.error.code !== 'ERR_TIMEOUT' || done !== 1000) throw new Error(`threads: spin ${JSON.stringify(spin)}, ${done} of 1000 done`);
console.log('threads: a thread agent from the package: an endless loop killed at its timeout, 1,000 tasks done: ok');
JS
node threads.mjs

cat > otel.mjs <<'JS'
import { trace } from '@opentelemetry/api';
import { agent, createSystem } from 'baton-actors';
import { taskSpanContext, traceRuns } from 'baton-actors/otel';
const started = [];
const tracer = { startSpan: (name, options, ctx) => (started.push([name, trace.getSpanContext(ctx)?.traceId]), trace.wrapSpanContext(taskSpanContext('p', 'x'))) };
const tracing = traceRuns({ tracer });
const system = createSystem({ logger: false });
const pipe = system.spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle: (x) => x })] });
await pipe.send(1, { id: 'x' });
await pipe.drain();
await system.shutdown();
tracing.close();
if (started.length !== 1 || started[0][0] !== 'a run' || started[0][1] !== taskSpanContext('p', 'x').traceId) throw new Error(`otel: ${JSON.stringify(started)}`);
console.log('otel: baton-actors/otel with @opentelemetry/api: a span per run, in the task\'s trace: ok');
JS
node otel.mjs

cat > cjs.cjs <<'JS'
const { agent, createSystem } = require('baton-actors');
const system = createSystem({ logger: false });
const pipe = system.spawnPipeline({ name: 'p', stages: [agent({ name: 'a', handle: (x) => x + 1 }), agent({ name: 'b', handle: (x) => x * 2 }), agent({ name: 'c', handle: (x) => x - 1 })] });
const outputs = [];
pipe.onOutcome((o) => outputs.push(o.output));
pipe.sendMany([1, 2]).then(() => pipe.drain()).then(() => system.shutdown()).then(() => {
  if (outputs.sort().join() !== '3,5') throw new Error(`cjs: unexpected outputs ${outputs}`);
  console.log('cjs: require() of the ESM package (Node >= 20.19): ok');
});
JS
node cjs.cjs

cat > use.mts <<'TS'
import { agent, createSystem, type Outcome } from 'baton-actors';
import { faults } from 'baton-actors/testkit';
const system = createSystem({ logger: false });
const pipe = system.spawnPipeline<number, string>({ name: 'p', stages: [agent({ name: 'a', handle: (x: number) => `${x}` })] });
const seen: Outcome<string>[] = [];
pipe.onOutcome((o) => seen.push(o));
void faults;
export { pipe, seen };
TS
for resolution in node16 bundler; do
  module=$([ "$resolution" = bundler ] && echo esnext || echo node16)
  cat > "tsconfig.$resolution.json" <<JSON
{ "compilerOptions": { "module": "$module", "moduleResolution": "$resolution", "target": "es2022", "strict": true, "noEmit": true, "skipLibCheck": false, "types": ["node"] }, "files": ["use.mts"] }
JSON
  npx tsc -p "tsconfig.$resolution.json"
  echo "typescript, moduleResolution $resolution: ok"
done
# TypeScript in a CommonJS project: importing the ESM package needs module node20 (TypeScript >= 5.9 models
# Node's require() of ESM); with node16 it must be an ES module (.mts, or "type": "module").
cp use.mts use-cjs.cts
sed -i 's/^export { pipe, seen };/module.exports = { pipe, seen };/' use-cjs.cts
cat > tsconfig.node20.json <<JSON
{ "compilerOptions": { "module": "node20", "moduleResolution": "node16", "target": "es2022", "strict": true, "noEmit": true, "types": ["node"] }, "files": ["use-cjs.cts"] }
JSON
npx tsc -p tsconfig.node20.json
echo "typescript, a CommonJS file with module node20: ok"

expected="baton $(node -p "require('$root/package.json').version")"
got="$(npx --no-install baton --version)"
[ "$got" = "$expected" ] || { echo "baton --version printed '$got', expected '$expected'"; exit 1; }
echo "npx baton --version: $got"
echo "consumer test passed on Node $(node --version)"
