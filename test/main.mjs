import { Worker } from 'node:worker_threads';
for (const opts of [{}, { execArgv: ['--import', 'tsx/esm'] }, {execArgv: ['--import', new URL('../node_modules/tsx/dist/esm/index.mjs', import.meta.url).href]}]) {
const w = new Worker(new URL('./w.ts', import.meta.url), opts);
w.on('message', (m) => { console.log(JSON.stringify(opts), 'got', m); w.terminate(); });
w.on('error', (e) => console.log(JSON.stringify(opts),'err', e.message));
}
