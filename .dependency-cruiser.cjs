// The floors of the house (docs/architecture.md, "Floors"), checked by `npm test` (npm run floors).
// Imports run one way only:
//   kernel (src/) <- policies (policies/) <- definitions (actors/) <- runtime (supervisors/)
//   <- composition root (system/) <- clients of the public API (testkit/, cli/, bench/, examples/), which import only the public
//   barrels: system/index.ts ('baton-actors') and testkit/index.ts ('baton-actors/testkit').
// Tests (test/) may import any floor: unit tests reach inside on purpose.
const KERNEL = '^src/';
const POLICIES = '^policies/';
const DEFINITIONS = '^actors/';
const RUNTIME = '^supervisors/';
const ROOT = '^system/';
const CLIENTS = '^(testkit|cli|otel|bench|examples)/';
const TESTS = '^test/';

/** A rule that forbids `from` importing anything in `to`. */
const floor = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import circle means two modules cannot be read (or changed) one without the other: move what they share into a third, lower module.',
      severity: 'error',
      from: { path: '^(src|policies|actors|supervisors|system|testkit|cli|otel)/' },
      to: { circular: true },
    },
    floor('kernel-imports-nothing-above', 'The kernel (src/) is the ground floor: scheduler, mailbox, clock, codec, errors, events, journal backends. It must not know policies, actors, supervisors or the system.', KERNEL, `${POLICIES}|${DEFINITIONS}|${RUNTIME}|${ROOT}|${CLIENTS}|${TESTS}`),
    floor('policies-import-only-the-kernel', 'Policies (policies/: backoff, intensity, breaker, strategies, an agent\'s merged policy) are immutable data and pure decisions of (state, now, random): no state, no timers, nothing above the kernel.', POLICIES, `${DEFINITIONS}|${RUNTIME}|${ROOT}|${CLIENTS}|${TESTS}`),
    floor('definitions-import-below-only', 'Definitions (actors/: agent, actor, envelope, outcome) describe what to run, in terms of the kernel and the policies; how it runs is the runtime (supervisors/), a floor above.', DEFINITIONS, `${RUNTIME}|${ROOT}|${CLIENTS}|${TESTS}`),
    floor('runtime-imports-nothing-above', 'The runtime (supervisors/) must not reach the composition root (system/) or any client.', RUNTIME, `${ROOT}|${CLIENTS}|${TESTS}`),
    floor('root-imports-no-client', 'The composition root (system/) wires the runtime together; clients build on it, never the other way round.', ROOT, `${CLIENTS}|${TESTS}`),
    {
      name: 'clients-use-the-public-api',
      comment: "Clients (testkit, CLI, bench, examples) import Baton as its users do: from the public barrels system/index.ts ('baton-actors') and testkit/index.ts ('baton-actors/testkit') only. What a client needs and the barrel lacks is a gap in the public API: export it there.",
      severity: 'error',
      from: { path: CLIENTS },
      to: { path: `${KERNEL}|${POLICIES}|${DEFINITIONS}|${RUNTIME}|${ROOT}`, pathNot: '^system/index\\.ts$' },
    },
    {
      name: 'testkit-is-its-own-client',
      comment: 'Only the testkit barrel (testkit/index.ts) is public; other clients must not reach into the testkit files.',
      severity: 'error',
      from: { path: '^(cli|bench|examples)/' },
      to: { path: '^testkit/', pathNot: '^testkit/index\\.ts$' },
    },
    {
      name: 'no-runtime-code-imports-tests',
      severity: 'error',
      from: { path: '^(src|policies|actors|supervisors|system|testkit|cli)/' },
      to: { path: TESTS },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
