// One process of the distributed kill test (argv: NATS_URL HOSTED_STAGES [kill]). It joins pipeline 'dist'
// hosting the named stages (comma-separated) and runs until it is killed. Stages:
//   parse  n -> n * 2 (with 'kill': ordered by key, every tenth task fanned out to 'check' and 'store')
//   check  async (1 ms); poison when n % 97 === 0 and n > 0 (input n/2 was sent); fails every seventh
//          task once (transient; with 'kill': once in each process, and ordered by key)
//   store  n -> n + 1, ordered by key (key partitions across the processes)
import { agent, createSystem, natsJetStream } from '../../system/index.js';
import { distStages } from './dist-stages.js';

const [url, hosted, variant] = process.argv.slice(2);
const system = createSystem({ logger: false, journal: await natsJetStream({ servers: url! }) });
await system.joinPipeline({ name: 'dist', stages: distStages(agent, variant === 'kill'), host: hosted!.split(',').filter(Boolean), ackWaitMs: 2_000 });
process.stdout.write('READY\n');
// Runs until SIGKILLed (or SIGTERM: a clean stop that gives its tasks back).
process.on('SIGTERM', () => void system.shutdown({ drainMs: 0 }).then(() => process.exit(0)));
setInterval(() => undefined, 1 << 30);
