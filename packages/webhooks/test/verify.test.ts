import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FORMATS, WebhookVerificationError, verify, type Format, type WebhookErrorCode, type VerifyInput } from '../src/index.js';
import { OLD_SECRET, OLD_WHSEC, SECRET, T0, WHSEC, approved, paymentStatusBody, secretFor, signedBody, signedRequest } from './fixtures.js';

const MIN = 60_000;

/** Runs verify and returns the error code it throws (or 'ok'). */
async function outcome(format: Format, input: VerifyInput): Promise<WebhookErrorCode | 'ok'> {
  try {
    await verify(format, input);
    return 'ok';
  } catch (err) {
    if (!(err instanceof WebhookVerificationError)) throw err;
    return err.code;
  }
}

describe('verify: each format accepts what the server signs', () => {
  it.each(FORMATS)('%s', async (format) => {
    const { body, headers } = await signedRequest(format, approved);
    const event = await verify(format, { body, headers, secrets: secretFor(format), now: T0 });
    expect(event).toMatchObject({ type: 'intent.approved', version: '2024-05', format, data: { tag: 'txn_12345', amount: 5025 } });
    if (format === 'standard') expect(event.id).toBe('evt_approved_1');
    else expect(event.id).toBe('intent.approved:intent_sandbox_mbDRHFi3dxIZEtykHsgUGC:approved');
    if (format === 'sendcash') expect(event.timestamp).toBeNull();
    else expect(event.timestamp!.getTime()).toBe(format === 'standard' ? Math.floor(T0.getTime() / 1000) * 1000 : T0.getTime());
  });

  it('takes the body as a Buffer, a Uint8Array or a string, and headers as Headers or an object in any case', async () => {
    const { body, headers } = await signedRequest('pushcash', approved);
    const sig = headers['x-webhook-signature']!;
    const bodies = [body, Buffer.from(body), new Uint8Array(Buffer.from(body))];
    const headerForms = [new Headers({ 'X-Webhook-Signature': sig }), { 'X-WEBHOOK-SIGNATURE': sig }, { 'x-webhook-signature': [sig] }];
    for (const b of bodies) for (const h of headerForms) expect((await verify('pushcash', { body: b, headers: h, secrets: SECRET, now: T0 })).type).toBe('intent.approved');
  });

  it('signs bytes, not characters: a non-ASCII body verifies from its bytes', async () => {
    const body = JSON.stringify({ type: 'endpoint.disabled', data: { endpoint_id: 'ep_é', url: 'https://ü.example', reason: 'operator', at: 'x' }, timestamp: T0.toISOString() });
    for (const format of FORMATS) {
      const { headers } = await signedBody(format, body);
      const event = await verify(format, { body: Buffer.from(body, 'utf8'), headers, secrets: secretFor(format), now: T0 });
      expect(event.data).toMatchObject({ endpoint_id: 'ep_é' });
    }
  });

  it('derives the pushcash id from the signed body, so swapping the unsigned x-webhook-id header cannot dodge de-duplication', async () => {
    const { body, headers } = await signedRequest('pushcash', approved);
    const a = await verify('pushcash', { body, headers, secrets: SECRET, now: T0 });
    const b = await verify('pushcash', { body, headers: { ...headers, 'x-webhook-id': 'evt_forged' }, secrets: SECRET, now: T0 });
    expect(b.id).toBe(a.id);
  });

  it('refuses parsed JSON as a body: the signed bytes cannot be rebuilt', async () => {
    await expect(verify('pushcash', { body: {} as never, headers: {}, secrets: SECRET })).rejects.toThrow(TypeError);
  });
});

describe('verify: every error code', () => {
  it('missing_secret (500): none, empty, or a standard secret that is not whsec_<base64>', async () => {
    const { body, headers } = await signedRequest('standard', approved);
    expect(await outcome('pushcash', { body, headers, secrets: [] })).toBe('missing_secret');
    expect(await outcome('sendcash', { body, headers, secrets: '' })).toBe('missing_secret');
    expect(await outcome('standard', { body, headers, secrets: ['whsec_'], now: T0 })).toBe('missing_secret');
    expect(await outcome('standard', { body, headers, secrets: ['whsec_not*base64!'], now: T0 })).toBe('missing_secret');
    const err = await verify('pushcash', { body, headers, secrets: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(WebhookVerificationError);
    expect(err).toMatchObject({ name: 'WebhookVerificationError', code: 'missing_secret', status: 500 });
  });

  it('missing_header (401): each signature header of each format', async () => {
    for (const format of FORMATS) {
      const { body, headers } = await signedRequest(format, approved);
      const signing = Object.keys(headers).filter((h) => h !== 'content-type' && h !== 'x-webhook-id');
      for (const name of signing) {
        const without = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== name));
        expect(await outcome(format, { body, headers: without, secrets: secretFor(format), now: T0 }), `${format} ${name}`).toBe('missing_header');
        expect(await outcome(format, { body, headers: { ...headers, [name]: '  ' }, secrets: secretFor(format), now: T0 })).toBe('missing_header');
      }
    }
  });

  it('malformed_header (401)', async () => {
    const push = await signedRequest('pushcash', approved);
    const hex = push.headers['x-webhook-signature']!.slice(7);
    const p = (sig: string) => outcome('pushcash', { body: push.body, headers: { 'x-webhook-signature': sig }, secrets: SECRET, now: T0 });
    expect(await p(hex)).toBe('malformed_header'); // no sha256= prefix
    expect(await p(`sha256=${hex.slice(2)}`)).toBe('malformed_header'); // short
    expect(await p(`sha256=${hex.slice(2)}zz`)).toBe('malformed_header'); // not hex
    expect(await p(`sha1=${hex}`)).toBe('malformed_header');
    expect(await p(`sha256=${hex.toUpperCase()}`)).toBe('ok'); // hex is case-insensitive

    const send = await signedRequest('sendcash', approved);
    const s = (sig: string) => outcome('sendcash', { body: send.body, headers: { 'x-transfers-signature': sig }, secrets: SECRET });
    expect(await s(`sha256=${send.headers['x-transfers-signature']}`)).toBe('malformed_header'); // Sendcash sends bare hex
    expect(await s('abc')).toBe('malformed_header');

    const std = await signedRequest('standard', approved);
    const t = (h: Record<string, string>) => outcome('standard', { body: std.body, headers: { ...std.headers, ...h }, secrets: WHSEC, now: T0 });
    expect(await t({ 'webhook-timestamp': 'yesterday' })).toBe('malformed_header');
    expect(await t({ 'webhook-timestamp': '1705271462.5' })).toBe('malformed_header');
    expect(await t({ 'webhook-signature': 'garbage' })).toBe('malformed_header');
  });

  it('bad_signature (401): a changed body, a wrong secret, a wrong or unknown-version standard signature', async () => {
    for (const format of FORMATS) {
      const { body, headers } = await signedRequest(format, approved);
      const tampered = body.replace('5025', '9999');
      expect(await outcome(format, { body: tampered, headers, secrets: secretFor(format), now: T0 })).toBe('bad_signature');
      expect(await outcome(format, { body, headers, secrets: format === 'standard' ? OLD_WHSEC : OLD_SECRET, now: T0 })).toBe('bad_signature');
    }
    const std = await signedRequest('standard', approved);
    const sig = std.headers['webhook-signature']!;
    const t = (s: string, h = std.headers) => outcome('standard', { body: std.body, headers: { ...h, 'webhook-signature': s }, secrets: WHSEC, now: T0 });
    expect(await t(sig.replace('v1,', 'v1a,'))).toBe('bad_signature'); // asymmetric scheme: not ours
    expect(await t('v1,not*base64')).toBe('bad_signature');
    expect(await t(sig, { ...std.headers, 'webhook-id': 'evt_other' })).toBe('bad_signature'); // the id is signed
    expect(await t(sig, { ...std.headers, 'webhook-timestamp': String(Math.floor(T0.getTime() / 1000) + 1) })).toBe('bad_signature'); // so is the time
  });

  it('stale_timestamp and future_timestamp (401): pushcash allows 10 minutes either way, from the body', async () => {
    const { body, headers } = await signedRequest('pushcash', approved);
    const at = (ms: number) => outcome('pushcash', { body, headers, secrets: SECRET, now: T0.getTime() + ms });
    expect(await at(10 * MIN)).toBe('ok');
    expect(await at(10 * MIN + 1)).toBe('stale_timestamp');
    expect(await at(-10 * MIN)).toBe('ok');
    expect(await at(-10 * MIN - 1)).toBe('future_timestamp');
    expect(await outcome('pushcash', { body, headers, secrets: SECRET, now: T0.getTime() + 2_000, toleranceMs: 1_000 })).toBe('stale_timestamp');
    expect(await outcome('pushcash', { body, headers, secrets: SECRET, now: new Date(T0.getTime() + 2_000), toleranceMs: 5_000 })).toBe('ok');
  });

  it('stale_timestamp and future_timestamp (401): standard allows 5 minutes either way, from webhook-timestamp', async () => {
    const { body, headers } = await signedRequest('standard', approved);
    const ts = Math.floor(T0.getTime() / 1000) * 1000;
    const at = (ms: number) => outcome('standard', { body, headers, secrets: WHSEC, now: ts + ms });
    expect(await at(5 * MIN)).toBe('ok');
    expect(await at(5 * MIN + 1)).toBe('stale_timestamp');
    expect(await at(-5 * MIN)).toBe('ok');
    expect(await at(-5 * MIN - 1)).toBe('future_timestamp');
  });

  it('sendcash signs no time: a year-old request still verifies (de-duplicate on the event id instead)', async () => {
    const { body, headers } = await signedBody('sendcash', paymentStatusBody);
    const event = await verify('sendcash', { body, headers, secrets: SECRET, now: T0.getTime() + 365 * 24 * 60 * MIN, toleranceMs: 1 });
    expect(event).toMatchObject({ type: 'Payment.Status', id: 'Payment.Status:ref_0001:Completed', timestamp: null, version: null });
  });

  it('malformed_json (400): only after the signature passed', async () => {
    const bad = async (format: Format, body: string) => {
      const { headers } = await signedBody(format, body);
      return outcome(format, { body, headers, secrets: secretFor(format), now: T0 });
    };
    for (const format of FORMATS) {
      expect(await bad(format, 'not json')).toBe('malformed_json');
      expect(await bad(format, '[1,2]')).toBe('malformed_json');
      expect(await bad(format, JSON.stringify({ type: 'intent.approved', data: 'x', timestamp: T0.toISOString() }))).toBe('malformed_json');
      expect(await bad(format, JSON.stringify({ type: 'intent.approved', data: { amount: 1, status: 'approved' }, timestamp: T0.toISOString() }))).toBe('malformed_json'); // no id
      expect(await bad(format, JSON.stringify({ data: {}, timestamp: T0.toISOString() }))).toBe('malformed_json'); // no type
    }
    // pushcash needs the body's timestamp: it is the only replay protection the format has
    expect(await bad('pushcash', JSON.stringify({ type: 'intent.approved', data: { id: 'i', amount: 1, status: 'approved' } }))).toBe('malformed_json');
    expect(await bad('pushcash', JSON.stringify({ type: 'intent.approved', data: { id: 'i', amount: 1, status: 'approved' }, timestamp: 'soon' }))).toBe('malformed_json');
    // invalid UTF-8, signed as bytes
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
    const sig = createHmac('sha256', SECRET).update(bytes).digest('hex');
    expect(await outcome('sendcash', { body: bytes, headers: { 'x-transfers-signature': sig }, secrets: SECRET })).toBe('malformed_json');
    const err = await verify('sendcash', { body: bytes, headers: { 'x-transfers-signature': sig }, secrets: SECRET }).catch((e) => e);
    expect(err.status).toBe(400);
  });

  it('a bad signature wins over a bad body: nothing unsigned is parsed', async () => {
    const { headers } = await signedRequest('pushcash', approved);
    expect(await outcome('pushcash', { body: 'not json', headers, secrets: SECRET, now: T0 })).toBe('bad_signature');
  });

  it('unknown_type (400)', async () => {
    for (const format of FORMATS) {
      const { body, headers } = await signedBody(format, JSON.stringify({ type: 'user.kyc_review', data: { id: 'u' }, timestamp: T0.toISOString() }));
      expect(await outcome(format, { body, headers, secrets: secretFor(format), now: T0 })).toBe('unknown_type');
    }
    const { body, headers } = await signedBody('sendcash', JSON.stringify({ event: 'Payment.Refund', data: {} }));
    const err = await verify('sendcash', { body, headers, secrets: SECRET }).catch((e) => e);
    expect(err).toMatchObject({ code: 'unknown_type', status: 400 });
  });
});

describe('verify: several secrets (rotation)', () => {
  it('pushcash and sendcash: a request signed with the old secret passes while both are configured', async () => {
    for (const format of ['pushcash', 'sendcash'] as const) {
      const { body, headers } = await signedRequest(format, approved, { secrets: [OLD_SECRET] });
      expect(await outcome(format, { body, headers, secrets: [SECRET, OLD_SECRET], now: T0 })).toBe('ok');
      expect(await outcome(format, { body, headers, secrets: [SECRET], now: T0 })).toBe('bad_signature');
    }
  });

  it('standard: the server sends one signature per secret; any one matching any configured secret passes', async () => {
    const { body, headers } = await signedRequest('standard', approved, { secrets: [WHSEC, OLD_WHSEC] });
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(await outcome('standard', { body, headers, secrets: [OLD_WHSEC], now: T0 })).toBe('ok');
    expect(await outcome('standard', { body, headers, secrets: [WHSEC], now: T0 })).toBe('ok');
    const third = `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`;
    expect(await outcome('standard', { body, headers, secrets: [third, OLD_WHSEC], now: T0 })).toBe('ok');
    expect(await outcome('standard', { body, headers, secrets: [third], now: T0 })).toBe('bad_signature');
  });
});
