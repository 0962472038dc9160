/**
 * The SDK as a newcomer installs it from the repository (it is not on the npm registry): `npm pack` of this package
 * gives a tarball that installs offline, with an empty cache, in an empty project, and whose ESM entry verifies a
 * signature. Guards `files`, `exports`/`main`/`types` and `prepack` in package.json.
 */
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const temp: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  temp.push(d);
  return d;
};
/** The environment without what `npm test` sets for its own run (npm_config_*, npm_package_*): a plain shell's npm. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

afterAll(() => {
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

describe('npm pack of @cashwire/webhooks', () => {
  it('installs offline in an empty project and verifies a signature from its ESM entry', async () => {
    const out = tempDir('cw-pack-');
    const packed = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: pkgDir, env: cleanEnv(), timeout: 120_000 });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    expect(info!.filename).toBe('cashwire-webhooks-0.1.0.tgz');
    const files = info!.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('README.md');
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);

    const project = tempDir('cw-sdk-user-');
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'sdk-user', version: '1.0.0', private: true, type: 'module' }));
    const tarball = path.join(out, info!.filename);
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--cache', path.join(project, '.empty-cache'), tarball], { cwd: project, env: cleanEnv(), timeout: 120_000 });
    expect(existsSync(path.join(project, 'node_modules/@cashwire/webhooks/dist/index.js'))).toBe(true);

    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const body = JSON.stringify({ type: 'intent.approved', timestamp: new Date().toISOString(), data: { id: 'intent_sandbox_1', status: 'approved', amount: 5000, currency: 'USD' } });
    const id = 'evt_1';
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64');
    writeFileSync(path.join(project, 'check.js'), `
import { verify, WebhookVerificationError } from '@cashwire/webhooks';
const [secret, body, id, ts, sig] = process.argv.slice(2);
const headers = { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': 'v1,' + sig };
const event = await verify('standard', { body, headers, secrets: [secret] });
let tampered = 'accepted';
try { await verify('standard', { body: body.replace('5000', '5001'), headers, secrets: [secret] }); } catch (e) { tampered = e instanceof WebhookVerificationError ? e.code : String(e); }
console.log(JSON.stringify({ type: event.type, id: event.id, tampered }));
`);
    const checked = await run(process.execPath, ['check.js', secret, body, id, ts, sig], { cwd: project, env: cleanEnv(), timeout: 30_000 });
    expect(JSON.parse(checked.stdout)).toEqual({ type: 'intent.approved', id: 'evt_1', tampered: 'bad_signature' });
  });
});
