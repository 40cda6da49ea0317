// One worker process of the distributed example: joins pipeline 'legal-dist' on the NATS server at
// argv[2], hosting the stages named in argv[3] (comma-separated), and runs until it is stopped.
import { createSystem, natsJetStream } from '../../system/index.js';
import { legalStages } from './stages.js';

const [servers, hosted = ''] = process.argv.slice(2);
const system = createSystem({ logger: false, journal: await natsJetStream({ servers: servers! }) });
await system.joinPipeline({ name: 'legal-dist', stages: legalStages(), host: hosted.split(',').filter(Boolean), ackWaitMs: 3_000 });
process.stdout.write('READY\n');
process.on('SIGTERM', () => void system.shutdown({ drainMs: 1_000 }).then(() => process.exit(0)));
setInterval(() => undefined, 1 << 30);
