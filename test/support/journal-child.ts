// A second OS process on a journal file, for the journal-file tests. MODE:
//   try   opens the journal, prints "OPENED" (then closes it) or "ERR <code>", and exits
//   hold  opens the journal, prints "HELD" and waits until it is killed
//   run   opens the journal under a system, sends COUNT tasks without ids, drains, prints "DONE <accepted>"
import { agent, createSystem, isBatonError, sqliteJournal } from '../../system/index.js';

const [path, mode, count = '0'] = process.argv.slice(2);
let journal;
try {
  journal = sqliteJournal(path!);
} catch (err) {
  process.stdout.write(`ERR ${isBatonError(err) ? err.code : String(err)}\n`);
  process.exit(0);
}
if (mode === 'try') {
  process.stdout.write('OPENED\n');
  journal.close();
} else if (mode === 'hold') {
  process.stdout.write('HELD\n');
  setInterval(() => undefined, 60_000);
} else {
  const system = createSystem({ logger: false, journal });
  const pipe = system.spawnPipeline<number, number>({ name: 'p', stages: [agent({ name: 's', handle: (x: number) => x })] });
  let accepted = 0;
  for (let i = 0; i < Number(count); i++) if ((await pipe.send(i)) === 'accepted') accepted++;
  await pipe.drain();
  process.stdout.write(`DONE ${accepted}\n`);
  await system.shutdown();
}
