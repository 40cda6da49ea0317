#!/usr/bin/env node
// The operator CLI. From a build (dist/) it runs plain JS; in a checkout it runs the TypeScript through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/cli/baton.js', import.meta.url));
let mod;
if (existsSync(built)) mod = await import(pathToFileURL(built).href);
else {
  const { tsImport } = await import('tsx/esm/api');
  mod = await tsImport('../cli/baton.ts', import.meta.url);
}
process.exitCode = await mod.main(process.argv.slice(2), (s) => process.stdout.write(s), (s) => process.stderr.write(s), { tty: process.stdout.isTTY === true });
