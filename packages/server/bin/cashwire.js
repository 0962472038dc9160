#!/usr/bin/env node
// The `cashwire` command. A committed file, so that npm links it at install time, before `prepare` builds the code it
// loads: in a fresh clone `npm install` runs `prepare` (the build) after linking the bins.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write('cashwire: the CLI is not built yet: run `npm run build` at the repository root (npm install does it)\n');
  process.exit(1);
}
await import(cli);
