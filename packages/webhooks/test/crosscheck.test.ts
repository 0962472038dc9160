/**
 * This package against independent implementations: the seed's own Node snippet, the seed's Ruby/OpenSSL recipe
 * (through the openssl CLI), and the `standardwebhooks` reference library.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { WebhookVerificationError, isoMicros, signHeaders, verify, type Format } from '../src/index.js';
import { OLD_WHSEC, SECRET, T0, WHSEC, approved, paymentStatusBody, signedBody, signedRequest } from './fixtures.js';

async function accepts(format: Format, body: string | Buffer, headers: Record<string, string>, secret: string, now?: number): Promise<boolean> {
  try {
    await verify(format, { body, headers, secrets: secret, now });
    return true;
  } catch (err) {
    if (err instanceof WebhookVerificationError && ['bad_signature', 'malformed_header', 'stale_timestamp'].includes(err.code)) return false;
    throw err;
  }
}

describe('(a) seed 001: the Push Cash Node recipe, verbatim', () => {
  // ---- seed 001, as published (only `require` became the import above) ----
  function verifyWebhookSignature(secret: string, rawBody: Buffer | string, signatureHeader: string | undefined) {
    // Parse signature from header
    if (!signatureHeader || !signatureHeader.startsWith('sha256=')) {
      return false;
    }

    const receivedSignature = signatureHeader.substring(7); // Remove 'sha256=' prefix

    // Compute expected signature
    const hmac = crypto.createHmac('sha256', secret);
    hmac.update(rawBody); // rawBody must be Buffer or string
    const expectedSignature = hmac.digest('hex');

    // Constant-time comparison to prevent timing attacks
    return crypto.timingSafeEqual(
      Buffer.from(receivedSignature, 'hex'),
      Buffer.from(expectedSignature, 'hex')
    );
  }
  function verifyWebhookTimestamp(timestamp: string, maxAgeMinutes = 10) {
    const webhookTime = new Date(timestamp);
    const now = new Date();
    const ageMinutes = (now.getTime() - webhookTime.getTime()) / 1000 / 60; // `now - webhookTime` in the JS original

    return ageMinutes <= maxAgeMinutes;
  }
  // ---- end of seed 001 ----

  it('agrees on the signature of what the server signs, on tampering and on a wrong secret', async () => {
    const { body, headers } = await signedRequest('pushcash', approved);
    const sig = headers['x-webhook-signature'];
    const raw = Buffer.from(body);
    const cases: [Buffer, string | undefined, string][] = [
      [raw, sig, SECRET],
      [Buffer.from(body.replace('5025', '5026')), sig, SECRET],
      [raw, sig, `${SECRET}x`],
      [raw, sig?.replace('sha256=', 'sha512='), SECRET],
      [raw, undefined, SECRET],
    ];
    for (const [b, s, secret] of cases) {
      const seed = verifyWebhookSignature(secret, b, s);
      const ours = s === undefined ? false : await accepts('pushcash', b, { 'x-webhook-signature': s }, secret, T0.getTime());
      expect(ours, `case ${cases.findIndex((c) => c[0] === b && c[1] === s && c[2] === secret)}`).toBe(seed);
    }
    expect(verifyWebhookSignature(SECRET, raw, sig)).toBe(true);
  });

  it('agrees on the 10-minute age rule (the seed reads the real clock, so the body is stamped relative to it)', async () => {
    for (const ageMin of [0, 9.9, 10.1, 60]) {
      const stamped = isoMicros(new Date(Date.now() - ageMin * 60_000));
      const body = JSON.stringify({ type: 'intent.approved', data: { id: 'intent_1', tag: 't', amount: 1, status: 'approved' }, timestamp: stamped });
      const { headers } = await signedBody('pushcash', body);
      expect(await accepts('pushcash', body, headers, SECRET), `${ageMin} min`).toBe(verifyWebhookTimestamp(stamped));
    }
  });

  it('is stricter on malformed headers: the seed throws on a short signature, this package answers malformed_header', async () => {
    const { body } = await signedRequest('pushcash', approved);
    expect(() => verifyWebhookSignature(SECRET, body, 'sha256=abcd')).toThrow(RangeError);
    await expect(verify('pushcash', { body, headers: { 'x-webhook-signature': 'sha256=abcd' }, secrets: SECRET, now: T0 })).rejects.toMatchObject({ code: 'malformed_header' });
  });
});

describe('(b) seed 004: the Sendcash Ruby/OpenSSL recipe, re-expressed', () => {
  // signature = OpenSSL::HMAC.hexdigest(OpenSSL::Digest.new('sha256'), signature_token, body)
  function opensslHexdigest(token: string, body: string): string {
    return execFileSync('openssl', ['dgst', '-sha256', '-hmac', token, '-r'], { input: body }).toString().split(' ')[0]!;
  }
  // Rack::Utils.secure_compare(a, b): false on a length difference, else an XOR fold over the bytes
  function secureCompare(a: string, b: string): boolean {
    const l = Buffer.from(a);
    const r = Buffer.from(b);
    if (l.length !== r.length) return false;
    let res = 0;
    r.forEach((v, i) => (res |= v ^ l[i]!));
    return res === 0;
  }

  const token = 'sendcash_signature_token_0123456789';
  const vectors = [
    paymentStatusBody,
    paymentStatusBody.replace('Completed', 'Failed'),
    paymentStatusBody.replace('ADÉ-OKONKWO  Chidi', 'Ọlá Adé 🙂'), // multi-byte UTF-8: both sides sign bytes
  ];

  it('fixed vectors: openssl gives the recorded values', () => {
    expect(opensslHexdigest('key', 'The quick brown fox jumps over the lazy dog')).toBe('f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'); // the well-known HMAC-SHA256 example
    expect(opensslHexdigest(token, paymentStatusBody)).toBe('803d5f2cee5aa1aa584517959e6c7004a4bfed4d141aadc05a5922ca74464077');
  });

  it('the header openssl computes verifies here, and what the server signs passes secure_compare', async () => {
    for (const body of vectors) {
      const expected = opensslHexdigest(token, body);
      const event = await verify('sendcash', { body: Buffer.from(body), headers: { 'X-Transfers-Signature': expected }, secrets: token });
      expect(event.type).toBe('Payment.Status');
      const ours = await signHeaders({ format: 'sendcash', id: 'x', body, secrets: [token], timestamp: T0 });
      expect(secureCompare(expected, ours['x-transfers-signature']!)).toBe(true);
    }
  });

  it('both refuse a tampered body and a wrong token', async () => {
    const good = opensslHexdigest(token, paymentStatusBody);
    const tampered = paymentStatusBody.replace('100.23', '1000.23');
    expect(secureCompare(opensslHexdigest(token, tampered), good)).toBe(false);
    expect(await accepts('sendcash', tampered, { 'x-transfers-signature': good }, token)).toBe(false);
    expect(secureCompare(opensslHexdigest(`${token}!`, paymentStatusBody), good)).toBe(false);
    expect(await accepts('sendcash', paymentStatusBody, { 'x-transfers-signature': good }, `${token}!`)).toBe(false);
    expect(await accepts('sendcash', paymentStatusBody, { 'x-transfers-signature': good }, token)).toBe(true);
  });
});

describe('(c) standard: the standardwebhooks reference library', () => {
  it('verifies what signHeaders produces, with one secret and during a rotation', async () => {
    const at = new Date(); // the library reads the real clock
    for (const secrets of [[WHSEC], [WHSEC, OLD_WHSEC]]) {
      const { body, headers } = await signedRequest('standard', approved, { at, secrets });
      for (const secret of secrets) expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: 'intent.approved', data: { amount: 5025 } });
    }
    const { body, headers } = await signedRequest('standard', approved, { at });
    expect(() => new Webhook(OLD_WHSEC).verify(body, headers)).toThrow();
    expect(() => new Webhook(WHSEC).verify(body.replace('5025', '1'), headers)).toThrow();
  });

  it('this package verifies what standardwebhooks signs', async () => {
    const at = new Date('2024-06-01T12:00:00Z');
    const body = JSON.stringify({ type: 'intent.settled', data: { id: 'intent_1', tag: 't1', amount: 100, status: 'approved', rail: 'card', currency: 'USD', type: 'push' }, timestamp: at.toISOString() });
    const headers = { 'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', 'webhook-timestamp': String(at.getTime() / 1000), 'webhook-signature': new Webhook(WHSEC).sign('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', at, body) };
    const event = await verify('standard', { body, headers, secrets: [OLD_WHSEC, WHSEC], now: at });
    expect(event).toMatchObject({ id: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', type: 'intent.settled', version: '2024-05' });
    expect(await accepts('standard', body, headers, OLD_WHSEC, at.getTime())).toBe(false);
    // both sides agree on the exact signature bytes
    const ours = await signHeaders({ format: 'standard', id: headers['webhook-id'], body, secrets: [WHSEC], timestamp: at });
    expect(ours['webhook-signature']).toBe(headers['webhook-signature']);
  });

  it('both refuse a timestamp more than 5 minutes old or ahead', async () => {
    for (const offsetMin of [-6, 6]) {
      const at = new Date(Date.now() + offsetMin * 60_000);
      const { body, headers } = await signedRequest('standard', approved, { at });
      expect(() => new Webhook(WHSEC).verify(body, headers)).toThrow(/timestamp/);
      await expect(verify('standard', { body, headers, secrets: WHSEC })).rejects.toMatchObject({ code: offsetMin < 0 ? 'stale_timestamp' : 'future_timestamp' });
    }
  });
});
