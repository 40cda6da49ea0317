import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Examples import Baton as its users do ('baton-actors', 'baton-actors/testkit'); here those names mean the sources.
const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^baton-actors\/testkit$/, replacement: src('./testkit/index.ts') },
      { find: /^baton-actors$/, replacement: src('./system/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 20_000,
    pool: 'forks',
  },
});
