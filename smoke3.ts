import { agent, createSystem } from './system/index.ts';
const system = createSystem({ logger: false });
const conc = Number(process.argv[2] ?? 2);
const pipe = system.spawnPipeline<any, any>({ name: 'p', stages: [agent({ name: 't', module: new URL('./test/support/threads/ops.mjs', import.meta.url), threads: 2, concurrency: conc, mailbox: { capacity: 10000 } })] });
let n = 0; pipe.onOutcome(() => n++);
await pipe.send(1); await pipe.drain();
for (const N of [10000, 100000]) {
const t0 = performance.now();
const all: Promise<unknown>[] = [];
for (let i = 0; i < N; i++) { const r = pipe.send(i); if (i % 5000 === 0) await r; }
await pipe.drain();
const ms = performance.now() - t0;
console.log(`conc ${conc}: ${N} tasks in ${ms.toFixed(0)} ms = ${(N / ms * 1000).toFixed(0)}/s`);
}
await system.shutdown();
