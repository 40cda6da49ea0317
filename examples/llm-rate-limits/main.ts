// npx tsx examples/llm-rate-limits/main.ts: 300 summaries through a fake model server that refuses
// half its calls with 429 + Retry-After: 1 for the first 5 s.
import { runStorm } from './run.js';

const r = await runStorm(Number(process.argv[2] ?? 300));
const lines = [
  `tasks ${r.tasks}: ${r.completed} completed, ${r.deadLettered} dead-lettered, ${r.chargedAttempts} attempts charged`,
  `calls to the model server: ${r.calls} (${(r.calls / r.tasks).toFixed(2)}x the tasks), ${r.refused} refused with 429`,
  `${r.holds} refusals held the agent's inbox (Retry-After, then one call first); ${r.seconds.toFixed(1)} s in all`,
  `checks: none dead-lettered ${r.deadLettered === 0 ? 'PASS' : 'FAIL'}; none charged ${r.chargedAttempts === 0 ? 'PASS' : 'FAIL'}; calls <= 1.2x tasks ${r.calls <= 1.2 * r.tasks ? 'PASS' : 'FAIL'}`,
];
process.stdout.write(lines.join('\n') + '\n');
if (r.deadLettered > 0 || r.chargedAttempts > 0 || r.calls > 1.2 * r.tasks) process.exitCode = 1;
