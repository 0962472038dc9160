// Builds the browser script: one minified IIFE that sets window.PushCash, served by the server at /sdk/push.umd.js.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const { version } = JSON.parse(readFileSync(path.join(here, 'package.json'), 'utf8'));
await build({
  entryPoints: [path.join(here, 'src/index.ts')],
  outfile: path.join(here, 'dist/push.umd.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2018'],
  define: { __VERSION__: JSON.stringify(version) },
  banner: { js: `/*! @cashwire/button ${version} | PushJS-compatible | MIT */` },
  legalComments: 'none',
  logLevel: 'warning',
});
