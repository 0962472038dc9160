/**
 * The core on a runtime with only Web Crypto (Workers, Deno, browsers): a fresh copy of the package is loaded while
 * `process.versions.node` is hidden, so it never reaches for node:crypto, and must agree with the Node path.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FORMATS } from '../src/index.js';
import { T0, approved, secretFor, signedRequest } from './fixtures.js';

const sign = vi.spyOn(crypto.subtle, 'sign');
afterAll(() => sign.mockRestore());

async function loadWithoutNode(): Promise<typeof import('../src/index.js')> {
  vi.resetModules();
  const versions = process.versions;
  Object.defineProperty(process, 'versions', { value: { ...versions, node: undefined }, configurable: true });
  try {
    const pkg = await import('../src/index.js');
    await pkg.hmacSha256('k', 'd'); // settles the crypto choice while Node is hidden
    return pkg;
  } finally {
    Object.defineProperty(process, 'versions', { value: versions, configurable: true });
  }
}

describe('Web Crypto only', () => {
  it('verifies what the Node path signs, and signs what the Node path verifies', async () => {
    const web = await loadWithoutNode();
    sign.mockClear();
    for (const format of FORMATS) {
      const { body, headers } = await signedRequest(format, approved); // Node crypto
      const event = await web.verify(format, { body: new TextEncoder().encode(body), headers: new Headers(headers), secrets: secretFor(format), now: T0 });
      expect(event.type).toBe('intent.approved');
      const webHeaders = await web.signHeaders({ format, id: approved.id, body, secrets: [secretFor(format)], timestamp: T0 });
      expect({ ...webHeaders, 'content-type': 'application/json' }).toEqual(headers);
    }
    expect(sign).toHaveBeenCalled(); // the Web Crypto path really ran
    await expect(web.verify('pushcash', { body: '{}', headers: { 'x-webhook-signature': `sha256=${'0'.repeat(64)}` }, secrets: 's' })).rejects.toBeInstanceOf(web.WebhookVerificationError);
  });
});
