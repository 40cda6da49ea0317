// npm run demo:distributed [-- DOCUMENTS]: the legal pipeline over three worker processes and a
// local nats-server (apt-get install -y nats-server), with one worker killed midway.
import { natsMissing } from '../../testkit/index.js';
import { runDistributed } from './run.js';

if (natsMissing !== '') {
  process.stderr.write(`${natsMissing}\n`);
  process.exit(2);
}
const documents = Number(process.argv[2] ?? 5_000);
if (!Number.isInteger(documents) || documents < 1) {
  process.stderr.write(`usage: npm run demo:distributed [-- DOCUMENTS]; DOCUMENTS must be a whole number >= 1, got '${process.argv[2]}'\n`);
  process.exit(2);
}
const s = await runDistributed(documents, 42, (line) => process.stdout.write(`${line}\n`));
process.stdout.write(
  [
    `documents ${s.documents}: ${s.completed} completed, ${s.deadLettered} dead-lettered (${s.corrupt} corrupt), ${s.missing} without an outcome; ${s.seconds.toFixed(1)} s`,
    ...s.checks.map((c) => `  ${c.ok ? 'PASS' : 'FAIL'}  ${c.name}`),
  ].join('\n') + '\n',
);
process.exitCode = s.checks.every((c) => c.ok) ? 0 : 1;
