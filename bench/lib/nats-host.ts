// A worker process for bench/nats.ts: hosts the slow stage of pipeline argv[3] on the server at argv[2].
import { createSystem, natsJetStream } from '../../system/index.js';
import { slowStages } from '../nats.js';

const [servers, name] = process.argv.slice(2);
const system = createSystem({ logger: false, journal: await natsJetStream({ servers: servers! }) });
await system.joinPipeline({ name: name!, stages: slowStages(), host: ['slow'] });
process.stdout.write('READY\n');
setInterval(() => undefined, 1 << 30);
