/**
 * The Sendcash Pay flavour end to end, against real PostgreSQL and real HTTP receivers: onboarding and both kinds of
 * key rotation, signed charges with exact kobo amounts, duplicate references, Payment.Status webhooks (checked by an
 * independent HMAC recipe: node:crypto, `openssl dgst`, and @cashwire/webhooks' verify), the every-5-minutes resend
 * driven by the clock, and the GraphQL API through plain `fetch` POSTs, as GraphQL clients send them.
 */
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { verify } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.js';
import type { LookupFn } from '../src/security/ssrf.js';
import { client, newOperator, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver, type Received } from './receiver.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const START = new Date('2026-03-02T09:00:00Z');

/** Public names resolve to a public address; `internal.*` to a private one (for production's refusal). */
const resolver: LookupFn = (host, options, cb) => {
  const address = host.startsWith('internal.') ? '10.1.2.3' : '93.184.216.34';
  return options.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4);
};

let s: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

beforeAll(async () => {
  s = await startTestServer({ graphqlPageSize: 3 }, new ManualClock(START), { resolver });
  rx = await startReceiver();
  harness = testWorkers(s, { resolver, connectTimeoutMs: 1_000, totalTimeoutMs: 2_000, leaseMs: 5_000 });
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

/** A worker driven by tick() and the manual clock; random 0.5 means no jitter: delays are exactly the schedule's. */
function worker() {
  return harness.make();
}

interface Merchant {
  keys: Keys;
  api: Api;
  path: string;
  endpointId: string;
  publicKey: string;
  secretKey: string;
  signatureToken: string;
}

let paths = 0;
/** A new operator onboarded to Sendcash with its webhook at a path of its own on the receiver. */
async function merchant(name = 'Naija Bets'): Promise<Merchant> {
  const keys = await newOperator(s, name);
  const api = client(s.url, keys.sandbox);
  const path = `/sendcash-${++paths}`;
  const r = await api.post('/sendcash/onboarding', { webhook_url: rx.url + path });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { keys, api, path, endpointId: r.body.endpoint_id, publicKey: r.body.public_key, secretKey: r.body.secret_key, signatureToken: r.body.signature_token };
}

/** The charge signature, written out independently of the server's code. */
function sign(secretKey: string, userId: string, reference: string, amountKobo: number | string, account: string, bank: string): string {
  return createHmac('sha256', secretKey).update(`${userId}:${reference}:${amountKobo}:${account}:${bank}`).digest('hex');
}

let refs = 0;
const ACCOUNT = '0690000031';
const BANK = '044';

interface ChargeOptions {
  amount: number | string;
  /** What the signature signs as the amount; default: the amount in kobo. */
  kobo?: number | string;
  reference?: string;
  useTransactionReference?: boolean;
  userId?: string;
  description?: string;
  secretKey?: string;
  signature?: string;
  publicKey?: string;
}

/** POST /sendcash/charges as a checkout page would (no API key: the public key is in the body). */
async function charge(m: Merchant, o: ChargeOptions) {
  const reference = o.reference ?? `ref_${++refs}`;
  const userId = o.userId ?? 'user_42';
  const kobo = o.kobo ?? Math.round(Number(o.amount) * 100);
  const body: Record<string, unknown> = {
    publicKey: o.publicKey ?? m.publicKey,
    signature: o.signature ?? sign(o.secretKey ?? m.secretKey, userId, reference, kobo, ACCOUNT, BANK),
    userId,
    [o.useTransactionReference ? 'transactionReference' : 'paymentReference']: reference,
    amount: o.amount,
    destinationAccountNumber: ACCOUNT,
    destinationBankCode: BANK,
    ...(o.description !== undefined ? { description: o.description } : {}),
  };
  const r = await client(s.url).post('/sendcash/charges', body);
  return { ...r, reference, sent: body };
}

async function storedKobo(reference: string): Promise<number | undefined> {
  const { rows } = await s.running.deps.db.query<{ amount_kobo: number }>('SELECT amount_kobo FROM transfers WHERE reference = $1', [reference]);
  expect(rows.length).toBeLessThanOrEqual(1);
  return rows[0]?.amount_kobo;
}

const at = (path: string) => rx.received.filter((r) => r.path === path);

/** The docs' order of the Payment.Status data keys. */
const DATA_KEYS = ['status', 'userId', 'paymentReference', 'amount', 'description', 'senderAccountName', 'sourceAccountNumber',
  'sourceAccountType', 'sourceBankCode', 'destinationAccountNumber', 'destinationBankCode'];

/**
 * Checks X-Transfers-Signature three ways, none of them the sender's code: node:crypto, the `openssl dgst` command
 * (what seed 004's Ruby `OpenSSL::HMAC.hexdigest('sha256', token, body)` computes), and the receiver SDK.
 */
async function checkSignature(r: Received, token: string) {
  const header = r.headers['x-transfers-signature'];
  expect(header).toMatch(/^[0-9a-f]{64}$/);
  expect(header).toBe(createHmac('sha256', token).update(Buffer.from(r.body, 'utf8')).digest('hex'));
  // OpenSSL 3 prints `HMAC-SHA2-256(stdin)= <hex>`, older versions `(stdin)= <hex>`.
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', token], { input: Buffer.from(r.body, 'utf8') }).toString().trim();
  expect(out.split('= ').pop()).toBe(header);
  const event = await verify('sendcash', { body: Buffer.from(r.body, 'utf8'), headers: r.headers, secrets: token });
  expect(event.type).toBe('Payment.Status');
  return event;
}

function expectedBody(d: Record<string, unknown>): string {
  return JSON.stringify({ event: 'Payment.Status', data: Object.fromEntries(DATA_KEYS.map((k) => [k, d[k]])) });
}

/** A GraphQL request exactly as a GraphQL client makes it: POST {query, variables} with HTTP Basic. */
async function gql(auth: string | { publicKey: string; secretKey: string } | undefined, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) {
  const authorization = auth === undefined ? undefined : typeof auth === 'string' ? auth : `Basic ${Buffer.from(`${auth.publicKey}:${auth.secretKey}`).toString('base64')}`;
  const res = await fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...(authorization ? { authorization } : {}), ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { data: any; errors?: { message: string; path?: string[]; extensions?: { code?: string } }[] } };
}

describe('onboarding', () => {
  it('returns the Signature Token, the public key and the secret key once; the endpoint is a sendcash one for Payment.Status', async () => {
    const keys = await newOperator(s, 'First Bet');
    const api = client(s.url, keys.sandbox);
    const first = await api.post('/sendcash/onboarding', { webhook_url: `${rx.url}/onb-1` });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      endpoint_id: expect.stringMatching(/^ep_/),
      webhook_url: `${rx.url}/onb-1`,
      public_key: expect.stringMatching(/^pk_test_[0-9a-f]{32}$/),
      signature_token: expect.stringMatching(/^[0-9a-f]{64}$/),
      secret_key: expect.stringMatching(/^sk_sc_[0-9a-f]{48}$/),
    });
    const ep = await api.get(`/webhook/endpoints/${first.body.endpoint_id}`);
    expect(ep.body).toMatchObject({ url: `${rx.url}/onb-1`, format: 'sendcash', events: ['Payment.Status'], status: 'enabled' });
    expect((await api.get(`/webhook/endpoints/${first.body.endpoint_id}/secret`)).body.secret).toBe(first.body.signature_token);

    // A new URL moves the same endpoint; nothing secret is shown again, and nothing secret changes.
    const second = await api.post('/sendcash/onboarding', { webhook_url: `${rx.url}/onb-2` });
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ endpoint_id: first.body.endpoint_id, webhook_url: `${rx.url}/onb-2`, public_key: first.body.public_key, signature_token: null, secret_key: null });
    const list = await api.get('/webhook/endpoints');
    expect(list.body.data.map((e: { id: string; url: string }) => [e.id, e.url])).toEqual([[first.body.endpoint_id, `${rx.url}/onb-2`]]);
    expect((await api.get(`/webhook/endpoints/${first.body.endpoint_id}/secret`)).body.secret).toBe(first.body.signature_token);

    // The old secret key still signs charges, and their webhooks go to the new URL.
    const m = { keys, api, path: '/onb-2', endpointId: first.body.endpoint_id, publicKey: first.body.public_key, secretKey: first.body.secret_key, signatureToken: first.body.signature_token };
    expect((await charge(m, { amount: 11.11 })).status).toBe(201);
    await worker().tick();
    expect(at('/onb-1')).toHaveLength(0);
    expect(at('/onb-2')).toHaveLength(1);
    await checkSignature(at('/onb-2')[0]!, first.body.signature_token);
  });

  it('two first onboardings at once make one endpoint and one key pair, and the secret key handed out works', async () => {
    const keys = await newOperator(s, 'Racing Bet');
    const api = client(s.url, keys.sandbox);
    const all = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => api.post('/sendcash/onboarding', { webhook_url: `${rx.url}/race-${i}` })));
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const shown = all.filter((r) => r.body.secret_key !== null);
    expect(shown).toHaveLength(1);
    expect(new Set(all.map((r) => r.body.endpoint_id)).size).toBe(1);
    expect(new Set(all.map((r) => r.body.public_key)).size).toBe(1);
    expect((await api.get('/webhook/endpoints')).body.data).toHaveLength(1);
    const m = { keys, api, path: '', endpointId: shown[0]!.body.endpoint_id, publicKey: shown[0]!.body.public_key, secretKey: shown[0]!.body.secret_key, signatureToken: shown[0]!.body.signature_token };
    expect((await charge(m, { amount: 5 })).status).toBe(201);
    expect((await gql(m, '{ getTransactions { paging { total } } }')).body.data.getTransactions.paging.total).toBe(1);
    expect((await api.get(`/webhook/endpoints/${m.endpointId}/secret`)).body.secret).toBe(m.signatureToken);
  });

  it('after the endpoint was deleted, onboarding makes a new one and shows its new Signature Token (the keys stay)', async () => {
    const m = await merchant();
    expect((await m.api.call('DELETE', `/webhook/endpoints/${m.endpointId}`)).status).toBe(200);
    const again = await m.api.post('/sendcash/onboarding', { webhook_url: `${rx.url}${m.path}-new` });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.endpoint_id).not.toBe(m.endpointId);
    expect(again.body.signature_token).toMatch(/^[0-9a-f]{64}$/);
    expect(again.body.signature_token).not.toBe(m.signatureToken);
    expect(again.body).toMatchObject({ public_key: m.publicKey, secret_key: null });
    expect((await m.api.get('/webhook/endpoints')).body.data.map((e: { id: string }) => e.id)).toEqual([again.body.endpoint_id]);
    expect((await charge(m, { amount: 11.11 })).status).toBe(201);
    await worker().tick();
    expect(at(`${m.path}-new`)).toHaveLength(1);
    await checkSignature(at(`${m.path}-new`)[0]!, again.body.signature_token);
  });

  it('production needs https and refuses private, loopback and metadata addresses, literal or resolved; its keys are its own', async () => {
    const keys = await newOperator(s, 'Live Bet');
    const prod = client(s.url, keys.production);
    const refused = async (url: string, code: string) => {
      const r = await prod.post('/sendcash/onboarding', { webhook_url: url });
      expect(r.status, url).toBe(400);
      expect(r.body.error, url).toMatchObject({ code, field: 'url' });
    };
    await refused('http://hooks.example.com/sendcash', 'https_required');
    await refused('https://10.0.0.5/sendcash', 'forbidden_address');
    await refused('https://127.0.0.1/sendcash', 'forbidden_address');
    await refused('https://169.254.169.254/latest', 'forbidden_address');
    await refused('https://[::1]/sendcash', 'forbidden_address');
    await refused('https://internal.example.com/sendcash', 'forbidden_address');
    await refused('not a url', 'invalid_url');
    // Nothing was made by the refusals.
    expect((await prod.get('/webhook/endpoints')).body.data).toHaveLength(0);
    const ok = await prod.post('/sendcash/onboarding', { webhook_url: 'https://hooks.example.com/sendcash' });
    expect(ok.status).toBe(200);
    expect(ok.body.public_key).toMatch(/^pk_live_/);
    expect(ok.body.secret_key).toMatch(/^sk_sc_/);
    // The sandbox has a key pair of its own, and accepts plain http to a local receiver.
    const sandbox = await client(s.url, keys.sandbox).post('/sendcash/onboarding', { webhook_url: `${rx.url}/live-bet-sandbox` });
    expect(sandbox.status).toBe(200);
    expect(sandbox.body.public_key).toMatch(/^pk_test_/);
    expect(sandbox.body.public_key).not.toBe(ok.body.public_key);
    expect(sandbox.body.secret_key).not.toBe(ok.body.secret_key);
    // A later production URL is checked the same way.
    const move = await prod.post('/sendcash/onboarding', { webhook_url: 'https://internal.example.com/x' });
    expect(move.status).toBe(400);
    expect(move.body.error.code).toBe('forbidden_address');
  });

  it('needs an API key', async () => {
    const r = await client(s.url).post('/sendcash/onboarding', { webhook_url: `${rx.url}/x` });
    expect(r.status).toBe(401);
    const bad = await client(s.url, 'sk_test_nope').post('/sendcash/onboarding', { webhook_url: `${rx.url}/x` });
    expect(bad.status).toBe(401);
  });
});

describe('rotation', () => {
  it('of the Signature Token: the new token signs X-Transfers-Signature at once; the previous one is shown during the grace period', async () => {
    const m = await merchant();
    const rotated = await m.api.post(`/webhook/endpoints/${m.endpointId}/rotate`, {});
    expect(rotated.status).toBe(200);
    const token = rotated.body.secret as string;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(token).not.toBe(m.signatureToken);
    const secret = await m.api.get(`/webhook/endpoints/${m.endpointId}/secret`);
    expect(secret.body).toMatchObject({ secret: token, previous_secret: m.signatureToken });
    expect(new Date(secret.body.previous_valid_until).getTime()).toBe(s.clock.now().getTime() + DAY);

    expect((await charge(m, { amount: 11.11 })).status).toBe(201);
    await worker().tick();
    const r = at(m.path)[0]!;
    await checkSignature(r, token);
    expect(r.headers['x-transfers-signature']).not.toBe(createHmac('sha256', m.signatureToken).update(r.body).digest('hex'));
    // A receiver that still knows only the old token refuses it; one that accepts both during the grace period takes it.
    await expect(verify('sendcash', { body: r.body, headers: r.headers, secrets: m.signatureToken })).rejects.toMatchObject({ code: 'bad_signature' });
    await expect(verify('sendcash', { body: r.body, headers: r.headers, secrets: [m.signatureToken, token] })).resolves.toMatchObject({ type: 'Payment.Status' });

    s.clock.advance(DAY + 1_000);
    expect((await m.api.get(`/webhook/endpoints/${m.endpointId}/secret`)).body).toMatchObject({ secret: token, previous_secret: null });
  });

  it('of the secret key: the old one no longer signs charges nor opens GraphQL; the public key stays', async () => {
    const m = await merchant();
    const rotated = await m.api.post('/sendcash/keys/rotate', {});
    expect(rotated.status).toBe(200);
    expect(rotated.body.public_key).toBe(m.publicKey);
    expect(rotated.body.secret_key).toMatch(/^sk_sc_/);
    expect(rotated.body.secret_key).not.toBe(m.secretKey);

    const old = await charge(m, { amount: 10 });
    expect(old.status).toBe(401);
    expect(old.body.error.code).toBe('invalid_signature');
    expect(await storedKobo(old.reference)).toBeUndefined();
    const fresh = await charge(m, { amount: 10, secretKey: rotated.body.secret_key });
    expect(fresh.status).toBe(201);

    const oldGql = await gql(m, '{ getTransactions { paging { total } } }');
    expect(oldGql.status).toBe(401);
    expect(oldGql.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const newGql = await gql({ publicKey: m.publicKey, secretKey: rotated.body.secret_key }, '{ getTransactions { paging { total } } }');
    expect(newGql.status).toBe(200);
    expect(newGql.body.data.getTransactions.paging.total).toBe(1);
  });

  it('of the secret key before onboarding is a 409', async () => {
    const keys = await newOperator(s, 'Not Yet');
    const r = await client(s.url, keys.sandbox).post('/sendcash/keys/rotate', {});
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('not_onboarded');
  });
});

describe('charges', () => {
  let m: Merchant;
  beforeAll(async () => {
    m = await merchant();
  });

  it('accepts the hex HMAC-SHA256 of user_id:payment_reference:amount_kobo:destination_account_number:destination_bank_code with the secret key', async () => {
    const r = await charge(m, { amount: 100.23, reference: 'order-1001', description: 'Wallet top-up' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({
      id: expect.stringMatching(/^trf_/), reference: 'order-1001', userId: 'user_42', amount: 100.23, description: 'Wallet top-up',
      destinationAccountNumber: ACCOUNT, destinationBankCode: BANK, status: 'Pending', senderAccountName: null,
      payerUrl: expect.stringMatching(new RegExp(`^${s.url}/sendcash/pay/`)),
    });
    // The literal recipe: the base string, then the HMAC.
    expect(r.body.id).toBeDefined();
    expect(sign(m.secretKey, 'user_42', 'order-1001', 10023, ACCOUNT, BANK)).toBe(createHmac('sha256', m.secretKey).update('user_42:order-1001:10023:0690000031:044').digest('hex'));
    // Upper-case hex is the same signature.
    const upper = await charge(m, { amount: 7, signature: sign(m.secretKey, 'user_42', 'order-upper', 700, ACCOUNT, BANK).toUpperCase(), reference: 'order-upper' });
    expect(upper.status).toBe(201);
  });

  it('rejects any other signature with 401 invalid_signature, and stores nothing', async () => {
    const cases: [string, ChargeOptions][] = [
      ['another amount signed', { amount: 100.23, kobo: 10024 }],
      ['the amount in units, not kobo', { amount: 100.23, kobo: '100.23' }],
      ['signed with the Signature Token', { amount: 100.23, secretKey: m.signatureToken }],
      ['signed with another merchant\'s key', { amount: 100.23, secretKey: 'sk_sc_000000000000000000000000000000000000000000000000' }],
      ['not hex', { amount: 100.23, signature: 'not-a-signature' }],
      ['truncated', { amount: 100.23, signature: sign(m.secretKey, 'user_42', 'x', 10023, ACCOUNT, BANK).slice(0, 63) }],
    ];
    for (const [what, o] of cases) {
      const r = await charge(m, o);
      expect(r.status, what).toBe(401);
      expect(r.body.error.code, what).toBe('invalid_signature');
      expect(await storedKobo(r.reference), what).toBeUndefined();
    }
    const unknown = await charge(m, { amount: 1, publicKey: 'pk_test_00000000000000000000000000000000' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('unknown_public_key');
  });

  it('takes the reference as paymentReference or transactionReference', async () => {
    const viaTransaction = await charge(m, { amount: 3, reference: 'trx-ref-1', useTransactionReference: true });
    expect(viaTransaction.status).toBe(201);
    expect(viaTransaction.body.reference).toBe('trx-ref-1');
    const base = { publicKey: m.publicKey, userId: 'u', amount: 1, destinationAccountNumber: ACCOUNT, destinationBankCode: BANK };
    const both = await client(s.url).post('/sendcash/charges', { ...base, paymentReference: 'same-ref', transactionReference: 'same-ref', signature: sign(m.secretKey, 'u', 'same-ref', 100, ACCOUNT, BANK) });
    expect(both.status).toBe(201);
    expect(both.body.reference).toBe('same-ref');
    const differ = await client(s.url).post('/sendcash/charges', { ...base, paymentReference: 'a', transactionReference: 'b', signature: sign(m.secretKey, 'u', 'a', 100, ACCOUNT, BANK) });
    expect(differ.status).toBe(400);
    expect(differ.body.error.code).toBe('conflicting_reference');
    const neither = await client(s.url).post('/sendcash/charges', { ...base, signature: sign(m.secretKey, 'u', '', 100, ACCOUNT, BANK) });
    expect(neither.status).toBe(400);
    expect(neither.body.error.code).toBe('missing_field');
  });

  it('keeps amounts exact in kobo; refuses what is not a positive amount of at most two decimals with invalid_amount', async () => {
    const a = await charge(m, { amount: 100.23 });
    expect(a.status).toBe(201);
    expect(await storedKobo(a.reference)).toBe(10023);
    const b = await charge(m, { amount: '100.23' });
    expect(b.status).toBe(201);
    expect(b.body.amount).toBe(100.23);
    expect(await storedKobo(b.reference)).toBe(10023);
    // Values whose float arithmetic would be off by a kobo: 0.29 * 100 = 28.999999999999996, 1.15 * 100 = 114.99999999999999.
    for (const [amount, kobo] of [[0.29, 29], [1.15, 115], [0.01, 1], ['19.9', 1990], [1234.5, 123450], ['9999999999999.99', 999999999999999]] as const) {
      const r = await charge(m, { amount, kobo });
      expect(r.status, String(amount)).toBe(201);
      expect(await storedKobo(r.reference), String(amount)).toBe(kobo);
      expect(r.body.amount, String(amount)).toBe(Number(amount));
    }
    for (const amount of [1.005, 0, -1, 'abc', '0', '0.00', '-1', '1.005', '1e3', 1e21, '100.234', '10000000000000', '1,000.00', 'NaN']) {
      const r = await charge(m, { amount, kobo: 100 });
      expect(r.status, JSON.stringify(amount)).toBe(400);
      expect(r.body.error, JSON.stringify(amount)).toMatchObject({ code: 'invalid_amount', field: 'amount' });
      expect(await storedKobo(r.reference)).toBeUndefined();
    }
  });

  it('an identical repeat returns the original; another charge with the same reference is 409 duplicate_reference; references are per operator', async () => {
    const first = await charge(m, { amount: 45.5, reference: 'dup-1', description: 'first' });
    expect(first.status).toBe(201);
    const again = await client(s.url).post('/sendcash/charges', first.sent);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    // The same amount written as a string is the same request.
    const asString = await client(s.url).post('/sendcash/charges', { ...first.sent, amount: '45.50' });
    expect(asString.status).toBe(200);
    expect(asString.body.id).toBe(first.body.id);
    for (const [what, o] of [
      ['another amount', { amount: 45.51 }],
      ['another user', { amount: 45.5, userId: 'user_43' }],
      ['another description', { amount: 45.5, description: 'second' }],
    ] as [string, Partial<ChargeOptions>][]) {
      const r = await charge(m, { amount: 45.5, reference: 'dup-1', description: 'first', ...o });
      expect(r.status, what).toBe(409);
      expect(r.body.error.code, what).toBe('duplicate_reference');
    }
    expect(await storedKobo('dup-1')).toBe(4550);
    // Another operator's reference space is its own.
    const other = await merchant('Other Casino');
    const theirs = await charge(other, { amount: 99, reference: 'dup-1' });
    expect(theirs.status).toBe(201);
    expect(theirs.body.id).not.toBe(first.body.id);
    const { rows } = await s.running.deps.db.query('SELECT operator_id, amount_kobo FROM transfers WHERE reference = $1 ORDER BY amount_kobo', ['dup-1']);
    expect(rows).toEqual([{ operator_id: m.keys.id, amount_kobo: 4550 }, { operator_id: other.keys.id, amount_kobo: 9900 }]);
  });

  it('answers the checkout page cross-origin: the preflight, and every answer, errors included, carry CORS headers', async () => {
    const pre = await fetch(`${s.url}/sendcash/charges`, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-type');
    const ok = await charge(m, { amount: 12 });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('access-control-allow-origin')).toBe('*');
    const badSig = await charge(m, { amount: 12, signature: 'nope' });
    expect(badSig.status).toBe(401);
    expect(badSig.headers.get('access-control-allow-origin')).toBe('*');
    const badBody = await client(s.url).post('/sendcash/charges', { publicKey: m.publicKey });
    expect(badBody.status).toBe(400);
    expect(badBody.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('Payment.Status webhooks', () => {
  let m: Merchant;
  beforeAll(async () => {
    m = await merchant();
  });

  it('11.11 completes at once in the sandbox: the body is exactly {event, data} in the docs\' order, signed with the Signature Token', async () => {
    const c = await charge(m, { amount: 11.11, reference: 'magic-complete' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ status: 'Completed', senderAccountName: 'Sandbox Payer', payerUrl: null });
    expect(await worker().tick()).toBe(1);
    const [r] = at(m.path);
    expect(r!.headers['content-type']).toMatch(/^application\/json/);
    expect(r!.body).toBe(expectedBody({
      status: 'Completed', userId: 'user_42', paymentReference: 'magic-complete', amount: 11.11, description: 'Transaction Successful',
      senderAccountName: 'Sandbox Payer', sourceAccountNumber: '0123456789', sourceAccountType: 'personal', sourceBankCode: '058',
      destinationAccountNumber: ACCOUNT, destinationBankCode: BANK,
    }));
    expect(Object.keys(JSON.parse(r!.body))).toEqual(['event', 'data']);
    expect(Object.keys(JSON.parse(r!.body).data)).toEqual(DATA_KEYS);
    const event = await checkSignature(r!, m.signatureToken);
    expect(event.data).toMatchObject({ status: 'Completed', paymentReference: 'magic-complete', amount: 11.11 });
    // The event and its delivery are in the event log under the id the webhook carried.
    const id = r!.headers['x-webhook-id'] as string;
    const logged = await m.api.get(`/events/${id}`);
    expect(logged.status).toBe(200);
    expect(logged.body).toMatchObject({ id, type: 'Payment.Status' });
    expect(logged.body.deliveries).toEqual([expect.objectContaining({ url: rx.url + m.path, format: 'sendcash', status: 'succeeded', attempts: 1 })]);
  });

  it('22.00 fails at once in the sandbox', async () => {
    const c = await charge(m, { amount: '22.00', reference: 'magic-fail' });
    expect(c.status).toBe(201);
    expect(c.body.status).toBe('Failed');
    await worker().tick();
    const [r] = at(m.path);
    expect(r!.body).toBe(expectedBody({
      status: 'Failed', userId: 'user_42', paymentReference: 'magic-fail', amount: 22, description: 'Transaction Failed',
      senderAccountName: 'Sandbox Payer', sourceAccountNumber: '0123456789', sourceAccountType: 'personal', sourceBankCode: '058',
      destinationAccountNumber: ACCOUNT, destinationBankCode: BANK,
    }));
    await checkSignature(r!, m.signatureToken);
  });

  it('other amounts wait: nothing is sent until the transfer is completed (simulate, with the payer\'s details) or failed', async () => {
    const c = await charge(m, { amount: 12345678.91, reference: 'big-one', description: 'High roller deposit', userId: 'user_7' });
    expect(c.status).toBe(201);
    expect(c.body.status).toBe('Pending');
    expect(await storedKobo('big-one')).toBe(1234567891);
    expect(await (await fetch(c.body.payerUrl)).text()).toContain('<div class="amount" data-testid="amount">₦12,345,678.91</div>');
    expect(await worker().tick()).toBe(0);
    expect(at(m.path)).toHaveLength(0);

    // A payer with a name outside ASCII: the signature is over the raw UTF-8 bytes.
    const payer = { senderAccountName: 'Adébáyọ̀ Ọlá-Okafor', sourceAccountNumber: '0234567891', sourceAccountType: 'business', sourceBankCode: '057' };
    const done = await m.api.post(`/simulate/transfer/${c.body.id}/complete`, payer);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'Completed', ...payer });
    await worker().tick();
    const [r] = at(m.path);
    expect(r!.body).toBe(expectedBody({
      status: 'Completed', userId: 'user_7', paymentReference: 'big-one', amount: 12345678.91, description: 'High roller deposit',
      ...payer, destinationAccountNumber: ACCOUNT, destinationBankCode: BANK,
    }));
    expect(r!.body).toContain('"amount":12345678.91,');
    await checkSignature(r!, m.signatureToken);

    // Decided once.
    const twice = await m.api.post(`/simulate/transfer/${c.body.id}/fail`, {});
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('transfer_not_pending');
    expect((await m.api.get(`/sendcash/transfers/${c.body.id}`)).body).toMatchObject({ status: 'Completed', amount: 12345678.91, payerUrl: null });
  });

  it('simulate fail sends Failed; simulate is sandbox-only and tenant-scoped', async () => {
    const c = await charge(m, { amount: 300, reference: 'to-fail' });
    const failed = await m.api.post(`/simulate/transfer/${c.body.id}/fail`, { senderAccountName: 'John Doe' });
    expect(failed.status).toBe(200);
    await worker().tick();
    const [r] = at(m.path);
    expect(JSON.parse(r!.body).data).toMatchObject({ status: 'Failed', paymentReference: 'to-fail', amount: 300, senderAccountName: 'John Doe', description: 'Transaction Failed' });
    await checkSignature(r!, m.signatureToken);

    const pending = await charge(m, { amount: 301 });
    expect((await client(s.url, m.keys.production).post(`/simulate/transfer/${pending.body.id}/complete`, {})).status).toBe(403);
    const stranger = await newOperator(s, 'Stranger');
    const notTheirs = await client(s.url, stranger.sandbox).post(`/simulate/transfer/${pending.body.id}/complete`, {});
    expect(notTheirs.status).toBe(404);
    expect((await m.api.post('/simulate/transfer/trf_doesnotexist/complete', {})).status).toBe(404);
  });
});

describe('resending until a 2xx, by the clock', () => {
  it('every 5 minutes (the sendcash schedule, not the sandbox\'s 3 attempts) with the same X-Webhook-Id, until the receiver answers 200', async () => {
    const m = await merchant();
    let calls = 0;
    rx.setResponder((r) => (r.path === m.path ? { status: ++calls <= 3 ? 500 : 200, body: 'nope' } : { status: 200 }));
    const c = await charge(m, { amount: 11.11, reference: 'resend-me' });
    expect(c.status).toBe(201);
    const w = worker();
    const t0 = s.clock.now().getTime();
    expect(await w.tick()).toBe(1);
    for (let attempt = 2; attempt <= 4; attempt++) {
      // Nothing before 5 minutes, not even at the earliest a ±10% jitter could allow (4 min 30 s).
      s.clock.advance(4.5 * MIN - 1_000);
      expect(await w.tick(), `attempt ${attempt} early`).toBe(0);
      s.clock.advance(0.5 * MIN + 1_000);
      expect(await w.tick(), `attempt ${attempt}`).toBe(1);
      expect(s.clock.now().getTime() - t0).toBe((attempt - 1) * 5 * MIN);
    }
    // Delivered: nothing more, however long we wait.
    s.clock.advance(60 * MIN);
    expect(await w.tick()).toBe(0);

    const got = at(m.path);
    expect(got).toHaveLength(4);
    expect(new Set(got.map((r) => r.headers['x-webhook-id'])).size).toBe(1);
    expect(new Set(got.map((r) => r.body)).size).toBe(1); // no timestamp in a Sendcash body: every attempt is the same bytes
    for (const r of got) await checkSignature(r, m.signatureToken);

    const logged = await m.api.get(`/events/${got[0]!.headers['x-webhook-id']}`);
    expect(logged.status).toBe(200);
    const [d] = logged.body.deliveries;
    expect(d).toMatchObject({ status: 'succeeded', attempts: 4, last_status: 200, format: 'sendcash' });
    expect(d.attempt_log.map((a: { attempt: number; status_code: number; started_at: string }) => [a.attempt, a.status_code, new Date(a.started_at).getTime() - t0]))
      .toEqual([[1, 500, 0], [2, 500, 5 * MIN], [3, 500, 10 * MIN], [4, 200, 15 * MIN]]);
  });

  it('after 3 failures it is still pending with the next attempt 5 minutes on; it expires only past 3 days, announced with delivery.exhausted', async () => {
    const m = await merchant();
    const ops = await m.api.post('/webhook/endpoints', { url: `${rx.url}${m.path}-ops`, events: ['delivery.exhausted'] });
    expect(ops.status).toBe(201);
    rx.setResponder((r) => (r.path === m.path ? { status: 500 } : { status: 200 }));
    const c = await charge(m, { amount: 11.11 });
    expect(c.status).toBe(201);
    const w = worker();
    const t0 = s.clock.now().getTime();
    await w.tick();
    for (let i = 0; i < 2; i++) {
      s.clock.advance(5 * MIN);
      expect(await w.tick()).toBe(1);
    }
    const id = at(m.path)[0]!.headers['x-webhook-id'] as string;
    const afterThree = (await m.api.get(`/events/${id}`)).body.deliveries[0];
    // The sandbox schedule would have expired it here.
    expect(afterThree).toMatchObject({ status: 'pending', attempts: 3, last_status: 500 });
    expect(new Date(afterThree.next_attempt_at).getTime()).toBe(t0 + 15 * MIN);

    // Close to the 3-day limit: one more attempt still happens; the one after would start past it, so it expires.
    s.clock.set(t0 + 3 * DAY - 2 * MIN);
    // That attempt, and the delivery.exhausted it leads to (a tick goes on until nothing is due).
    expect(await w.tick()).toBe(2);
    const last = (await m.api.get(`/events/${id}`)).body.deliveries[0];
    expect(last).toMatchObject({ status: 'expired', attempts: 4, next_attempt_at: null });
    // The operator hears of it, as for a payment event (Payment.Status is not an operational event).
    expect(await w.tick()).toBe(0);
    const told = at(`${m.path}-ops`).map((r) => JSON.parse(r.body));
    expect(told).toEqual([expect.objectContaining({ type: 'delivery.exhausted', data: expect.objectContaining({ event_id: id, event_type: 'Payment.Status', status: 'expired', attempts: 4, last_status: 500 }) })]);
    s.clock.advance(10 * MIN);
    expect(await w.tick()).toBe(0);
    expect(at(m.path)).toHaveLength(4);
  });
});

describe('GraphQL', () => {
  let g: Merchant;
  const t: Record<string, { id: string; reference: string }> = {};
  const Q = /* GraphQL */ `
    query Transactions($from: Date, $to: Date, $status: TransactionStatus, $page: Int) {
      getTransactions(from: $from, to: $to, status: $status, page: $page) {
        transactions { id reference amount sourceBankAccount sourceBankAccountName destinationBankAccount description createdAt status }
        paging { total page pages }
      }
    }`;
  const list = async (variables: Record<string, unknown> = {}, auth: Merchant | { publicKey: string; secretKey: string } = g) => {
    const r = await gql(auth, Q, variables);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.errors).toBeUndefined();
    return r.body.data.getTransactions as { transactions: { reference: string; [k: string]: unknown }[]; paging: { total: number; page: number; pages: number } };
  };
  const refsOf = (page: { transactions: { reference: string }[] }) => page.transactions.map((x) => x.reference);

  beforeAll(async () => {
    g = await merchant('GraphQL Gaming');
    // Seven transfers over three days, one hour apart within a day; newest first they are t7 … t1.
    const plan: [string, string, number, string?][] = [
      ['t1', '2030-01-15T08:00:00Z', 10, 'complete'],
      ['t2', '2030-01-15T09:00:00Z', 20.5, 'fail'],
      ['t3', '2030-01-15T10:00:00Z', 30],
      ['t4', '2030-01-15T11:00:00Z', 11.11], // Completed at once
      ['t5', '2030-01-16T08:00:00Z', 22], // Failed at once
      ['t6', '2030-01-16T09:00:00Z', 60],
      ['t7', '2030-01-17T08:00:00Z', 70.07, 'complete'],
    ];
    for (const [name, when, amount, then] of plan) {
      s.clock.set(new Date(when));
      const r = await charge(g, { amount, reference: `gql-${name}`, ...(name === 't1' ? { description: 'First deposit' } : {}) });
      expect(r.status).toBe(201);
      t[name] = { id: r.body.id, reference: `gql-${name}` };
      if (then) {
        const payer = then === 'complete' ? { senderAccountName: 'Ada Obi', sourceAccountNumber: '1111111111', sourceBankCode: '058' } : {};
        expect((await g.api.post(`/simulate/transfer/${r.body.id}/${then}`, payer)).status).toBe(200);
      }
    }
    s.clock.set(new Date('2030-01-18T12:00:00Z'));
  });

  it('getTransactions: every field, newest first, page-number paging with the configured page size (3)', async () => {
    const p1 = await list();
    expect(p1.paging).toEqual({ total: 7, page: 1, pages: 3 });
    expect(refsOf(p1)).toEqual(['gql-t7', 'gql-t6', 'gql-t5']);
    expect(p1.transactions[0]).toEqual({
      id: t.t7!.id, reference: 'gql-t7', amount: 70.07, sourceBankAccount: '1111111111', sourceBankAccountName: 'Ada Obi',
      destinationBankAccount: ACCOUNT, description: null, createdAt: '2030-01-17T08:00:00.000Z', status: 'Completed',
    });
    expect(p1.transactions[1]).toMatchObject({ reference: 'gql-t6', status: 'Pending', sourceBankAccount: null, sourceBankAccountName: null });
    expect(p1.transactions[2]).toMatchObject({ reference: 'gql-t5', status: 'Failed', amount: 22 });
    const p2 = await list({ page: 2 });
    expect(p2.paging).toEqual({ total: 7, page: 2, pages: 3 });
    expect(refsOf(p2)).toEqual(['gql-t4', 'gql-t3', 'gql-t2']);
    const p3 = await list({ page: 3 });
    expect(p3.paging).toEqual({ total: 7, page: 3, pages: 3 });
    expect(p3.transactions).toEqual([expect.objectContaining({ reference: 'gql-t1', amount: 10, description: 'First deposit', createdAt: '2030-01-15T08:00:00.000Z' })]);
    const past = await list({ page: 4 });
    expect(past).toEqual({ transactions: [], paging: { total: 7, page: 4, pages: 3 } });
    const farPast = await list({ page: 2_147_483_647 });
    expect(farPast).toEqual({ transactions: [], paging: { total: 7, page: 2_147_483_647, pages: 3 } });
    // The page argument defaults to 1, also written inline rather than as a variable.
    const inline = await gql(g, '{ getTransactions(page: 2) { transactions { reference } paging { page } } }');
    expect(inline.body.data.getTransactions).toEqual({ transactions: [{ reference: 'gql-t4' }, { reference: 'gql-t3' }, { reference: 'gql-t2' }], paging: { page: 2 } });
  });

  it('filters by from/to (dates take the whole day, date-times are exact and inclusive) and by status', async () => {
    const day2on = await list({ from: '2030-01-16' });
    expect(day2on.paging).toEqual({ total: 3, page: 1, pages: 1 });
    expect(refsOf(day2on)).toEqual(['gql-t7', 'gql-t6', 'gql-t5']);
    const day1 = await list({ to: '2030-01-15' });
    expect(day1.paging).toEqual({ total: 4, page: 1, pages: 2 });
    expect(refsOf(await list({ to: '2030-01-15', page: 2 }))).toEqual(['gql-t1']);
    expect(refsOf(await list({ from: '2030-01-15', to: '2030-01-15' }))).toEqual(['gql-t4', 'gql-t3', 'gql-t2']);
    expect(refsOf(await list({ from: '2030-01-15T09:00:00Z', to: '2030-01-15T10:00:00Z' }))).toEqual(['gql-t3', 'gql-t2']);
    expect(refsOf(await list({ from: '2030-01-15T09:00:00.001Z', to: '2030-01-15T10:00:00Z' }))).toEqual(['gql-t3']);
    // An offset is honoured: 09:00 at +01:00 is 08:00Z.
    expect((await list({ from: '2030-01-16T09:00:00+01:00' })).paging.total).toBe(3);
    const completed = await list({ status: 'Completed' });
    expect(refsOf(completed)).toEqual(['gql-t7', 'gql-t4', 'gql-t1']);
    expect(completed.paging).toEqual({ total: 3, page: 1, pages: 1 });
    expect(refsOf(await list({ status: 'Failed' }))).toEqual(['gql-t5', 'gql-t2']);
    expect(refsOf(await list({ status: 'Pending', from: '2030-01-16' }))).toEqual(['gql-t6']);
    const none = await list({ status: 'Failed', from: '2030-01-17' });
    expect(none).toEqual({ transactions: [], paging: { total: 0, page: 1, pages: 0 } });
  });

  it('refuses page 0, a negative page, a date that is not one, and an unknown status, in GraphQL\'s error shape', async () => {
    for (const page of [0, -1]) {
      const r = await gql(g, Q, { page });
      expect(r.body.data).toBeNull();
      expect(r.body.errors).toEqual([expect.objectContaining({ message: 'page starts at 1', path: ['getTransactions'], extensions: { code: 'BAD_USER_INPUT' } })]);
    }
    for (const from of ['yesterday', '2030-02-30', '2030-13-01', '15/01/2030']) {
      const r = await gql(g, Q, { from });
      expect(r.body.data, from).toBeNull();
      expect(r.body.errors?.[0], from).toMatchObject({ message: 'from must be an ISO 8601 date', extensions: { code: 'BAD_USER_INPUT' } });
    }
    const status = await gql(g, Q, { status: 'Done' });
    expect(status.status).toBe(400);
    expect(status.body.errors?.[0]?.message).toMatch(/Done/);
  });

  it('introspection works, including the standard deep introspection query of GraphQL clients', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    const full = await gql(g, getIntrospectionQuery());
    expect(full.status).toBe(200);
    expect(full.body.errors).toBeUndefined();
    expect(full.body.data.__schema.types.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(['Transaction', 'Paging', 'TransactionStatus']));
    const r = await gql(g, '{ __schema { queryType { name } mutationType { name } } }');
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ __schema: { queryType: { name: 'Query' }, mutationType: { name: 'Mutation' } } });
    const type = await gql(g, '{ __type(name: "Transaction") { fields { name type { kind ofType { name } } } } }');
    expect(type.body.data.__type.fields.map((f: { name: string }) => f.name)).toEqual(
      ['id', 'reference', 'amount', 'sourceBankAccount', 'sourceBankAccountName', 'destinationBankAccount', 'description', 'createdAt', 'status']);
  });

  it('limits depth (configurable) and cost (200 fields, fragments counted where they are spread), with errors in GraphQL\'s shape', async () => {
    // Depth counts field levels; the schema's deepest data queries have 3. A server limited to 2 refuses them,
    // through fragments too.
    const shallow = await startTestServer({ graphqlMaxDepth: 2 });
    try {
      const sapi = client(shallow.url, (await newOperator(shallow)).sandbox);
      const on = (await sapi.post('/sendcash/onboarding', { webhook_url: 'http://127.0.0.1:9/sc' })).body;
      const auth = { authorization: `Basic ${Buffer.from(`${on.public_key}:${on.secret_key}`).toString('base64')}` };
      const ok = await client(shallow.url).post('/graphql', { query: '{ getTransactions { __typename } }' }, auth);
      expect(ok.status).toBe(200);
      for (const query of ['{ getTransactions { transactions { id } } }', '{ getTransactions { ...P } } fragment P on TransactionsPage { transactions { id } }']) {
        const deep = await client(shallow.url).post('/graphql', { query }, auth);
        expect(deep.status).toBe(400);
        expect(deep.body.data).toBeNull();
        expect(deep.body.errors).toEqual([expect.objectContaining({ message: 'query too deep: depth 3 is over the limit of 2', extensions: { code: 'QUERY_TOO_DEEP' } })]);
      }
    } finally {
      await shallow.stop();
    }

    // 66 aliases of 3 fields and 2 × __typename: exactly 200 fields pass; one more does not.
    const aliases = Array.from({ length: 66 }, (_, i) => `a${i}: getTransactions { paging { total } }`).join(' ');
    const at200 = await gql(g, `{ ${aliases} t1: __typename t2: __typename }`);
    expect(at200.status).toBe(200);
    expect(at200.body.errors).toBeUndefined();
    expect(at200.body.data.a65.paging.total).toBe(7);
    const at201 = await gql(g, `{ ${aliases} t1: __typename t2: __typename t3: __typename }`);
    expect(at201.status).toBe(400);
    expect(at201.body.data).toBeNull();
    expect(at201.body.errors).toEqual([expect.objectContaining({ message: 'query too costly: more than 200 fields selected', extensions: { code: 'QUERY_TOO_COSTLY' } })]);

    // A fragment of 9 fields spread under 20 aliases selects 20 × 11 = 220 fields, though only 49 are written.
    const fragment = 'fragment F on Transaction { id reference amount sourceBankAccount sourceBankAccountName destinationBankAccount description createdAt status }';
    const spread = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: getTransactions { transactions { ...F } }`).join(' ')} } ${fragment}`;
    const cheap = await gql(g, spread(18)); // 18 × 11 = 198
    expect(cheap.status).toBe(200);
    expect(cheap.body.data.a17.transactions).toHaveLength(3);
    const costly = await gql(g, spread(20));
    expect(costly.status).toBe(400);
    expect(costly.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COSTLY');
    // Nested fragments count too.
    const nested = await gql(g, `{ ${Array.from({ length: 19 }, (_, i) => `a${i}: getTransactions { ...P }`).join(' ')} } fragment P on TransactionsPage { transactions { ...F } } ${fragment}`);
    expect(nested.status).toBe(400);
    expect(nested.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COSTLY');
  });

  it('HTTP Basic failures are 401 with errors[0].extensions.code UNAUTHENTICATED', async () => {
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const cases: [string, string | undefined][] = [
      ['no header', undefined],
      ['wrong secret', `Basic ${b64(`${g.publicKey}:sk_sc_wrong`)}`],
      ['empty secret', `Basic ${b64(`${g.publicKey}:`)}`],
      ['unknown public key', `Basic ${b64(`pk_test_00000000000000000000000000000000:${g.secretKey}`)}`],
      ['no colon', `Basic ${b64(g.publicKey)}`],
      ['not base64', 'Basic !!!not-base64!!!'],
      ['Basic with nothing', 'Basic'],
      ['a bearer key instead', `Bearer ${g.keys.sandbox}`],
      ['swapped user and password', `Basic ${b64(`${g.secretKey}:${g.publicKey}`)}`],
    ];
    for (const [what, auth] of cases) {
      const r = await gql(auth, '{ getTransactions { paging { total } } }');
      expect(r.status, what).toBe(401);
      expect(r.headers.get('www-authenticate'), what).toMatch(/^Basic /);
      expect(r.body.data, what).toBeNull();
      expect(r.body.errors?.[0]?.extensions?.code, what).toBe('UNAUTHENTICATED');
    }
  });

  it('tenant isolation: another operator\'s keys, and this operator\'s production keys, see none of these transfers', async () => {
    const other = await merchant('Elsewhere Ltd');
    expect(await list({}, other)).toEqual({ transactions: [], paging: { total: 0, page: 1, pages: 0 } });
    const mixed = await gql({ publicKey: g.publicKey, secretKey: other.secretKey }, '{ getTransactions { paging { total } } }');
    expect(mixed.status).toBe(401);
    const live = await client(s.url, g.keys.production).post('/sendcash/onboarding', { webhook_url: 'https://hooks.example.com/gql' });
    expect(live.status).toBe(200);
    expect((await list({}, { publicKey: live.body.public_key, secretKey: live.body.secret_key })).paging.total).toBe(0);
    expect((await list({})).paging.total).toBe(7);
  });

  describe('initiateTransferRequest', () => {
    const M = /* GraphQL */ `mutation Initiate($input: TransferRequestInput!) { initiateTransferRequest(input: $input) }`;
    const input = (reference: string, amount: number) => ({
      username: 'ada', sourceAccountNumber: '2222222222', sourceUserId: 'user_77', slug: 'naija-bets',
      beneficiary: { name: 'Ada Obi', payoutType: 'thirdParty', reference, destinationAccountNumber: ACCOUNT, destinationBankCode: BANK, amount },
    });
    const signature = (reference: string, kobo: number) => ({ 'x-transfers-request-signature': sign(g.secretKey, 'user_77', reference, kobo, ACCOUNT, BANK) });

    it('with a valid X-Transfers-Request-Signature returns the authorisation URL; the payer page loads; the transfer is listed', async () => {
      s.clock.set(new Date('2030-01-19T10:00:00Z'));
      const r = await gql(g, M, { input: input('tr-1', 250.75) }, signature('tr-1', 25075));
      expect(r.status).toBe(200);
      expect(r.body.errors).toBeUndefined();
      const url = r.body.data.initiateTransferRequest as string;
      expect(url).toMatch(new RegExp(`^${s.url}/sendcash/pay/${g.keys.id}/trf_\\w+\\?t=.+`));
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('₦250.75');
      expect(html).toContain('tr-1');
      expect(html).toContain('I have sent the transfer');
      const p1 = await list();
      expect(p1.paging.total).toBe(8);
      expect(p1.transactions[0]).toMatchObject({ reference: 'tr-1', amount: 250.75, status: 'Pending', destinationBankAccount: ACCOUNT, createdAt: '2030-01-19T10:00:00.000Z' });
      const { rows } = await s.running.deps.db.query('SELECT kind, user_id, name, amount_kobo FROM transfers WHERE operator_id = $1 AND reference = $2', [g.keys.id, 'tr-1']);
      expect(rows).toEqual([{ kind: 'transfer_request', user_id: 'user_77', name: 'Ada Obi', amount_kobo: 25075 }]);
      // The identical request again: the same URL.
      const again = await gql(g, M, { input: input('tr-1', 250.75) }, signature('tr-1', 25075));
      expect(again.body.data.initiateTransferRequest).toBe(url);
    });

    it('without the signature header, or with a wrong one, is a GraphQL error and creates nothing', async () => {
      const before = (await list()).paging.total;
      const none = await gql(g, M, { input: input('tr-2', 10) });
      expect(none.body.data).toBeNull();
      expect(none.body.errors).toEqual([expect.objectContaining({ path: ['initiateTransferRequest'], extensions: { code: 'UNAUTHENTICATED' } })]);
      const wrong = await gql(g, M, { input: input('tr-2', 10) }, signature('tr-2', 1001));
      expect(wrong.body.data).toBeNull();
      expect(wrong.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('signature does not match'), extensions: { code: 'UNAUTHENTICATED' } });
      const byToken = await gql(g, M, { input: input('tr-2', 10) }, { 'x-transfers-request-signature': sign(g.signatureToken, 'user_77', 'tr-2', 1000, ACCOUNT, BANK) });
      expect(byToken.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const amount = await gql(g, M, { input: input('tr-2', 10.005) }, signature('tr-2', 1001));
      expect(amount.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const dup = await gql(g, M, { input: input('tr-1', 99) }, signature('tr-1', 9900));
      expect(dup.body.errors?.[0]?.extensions?.code).toBe('DUPLICATE_REFERENCE');
      expect((await list()).paging.total).toBe(before);
    });

    it('a sandbox 11.11 request is completed at once; its URL shows the outcome rather than a dead link', async () => {
      const r = await gql(g, M, { input: input('tr-magic', 11.11) }, signature('tr-magic', 1111));
      expect(r.body.errors).toBeUndefined();
      const page = await fetch(r.body.data.initiateTransferRequest);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('Transfer completed');
      expect(html).not.toContain('I have sent the transfer');
      expect((await list({ status: 'Completed' })).transactions[0]).toMatchObject({ reference: 'tr-magic', sourceBankAccountName: 'Sandbox Payer' });
    });
  });
});

describe('the payer page', () => {
  it('a wrong token is a 404 page; in production the payer\'s details are required and there is no Fail button', async () => {
    const keys = await newOperator(s, 'Prod Payer');
    const prod = client(s.url, keys.production);
    const ob = await prod.post('/sendcash/onboarding', { webhook_url: 'https://hooks.example.com/prod-payer' });
    expect(ob.status).toBe(200);
    const m: Merchant = { keys, api: prod, path: '', endpointId: ob.body.endpoint_id, publicKey: ob.body.public_key, secretKey: ob.body.secret_key, signatureToken: ob.body.signature_token };
    // 11.11 is magic only in the sandbox.
    const c = await charge(m, { amount: 11.11 });
    expect(c.status).toBe(201);
    expect(c.body.status).toBe('Pending');
    const url = new URL(c.body.payerUrl);
    const wrong = await fetch(`${url.origin}${url.pathname}?t=nope`);
    expect(wrong.status).toBe(404);
    expect(await wrong.text()).toContain('Transfer not found');
    const html = await (await fetch(url)).text();
    expect(html).not.toContain('Fail (sandbox)');
    expect(html).not.toContain('Sandbox Payer');

    const decide = (body: Record<string, unknown>) => client(s.url).post(`${url.pathname}/decision`, { t: url.searchParams.get('t'), ...body });
    const missing = await decide({ action: 'complete' });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: 'missing_field', field: 'senderAccountName' });
    expect((await decide({ action: 'fail', senderAccountName: 'X', sourceAccountNumber: '1', sourceBankCode: '2' })).status).toBe(403);
    const done = await decide({ action: 'complete', senderAccountName: 'Chidi Eze', sourceAccountNumber: '0987654321', sourceBankCode: '011' });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'Completed', senderAccountName: 'Chidi Eze', sourceAccountType: 'personal' });
    const { rows } = await s.running.deps.db.query<{ data: Record<string, unknown> }>(
      "SELECT data FROM events WHERE operator_id = $1 AND environment = 'production' AND type = 'Payment.Status'", [keys.id]);
    expect(rows.map((r) => r.data)).toEqual([expect.objectContaining({ status: 'Completed', senderAccountName: 'Chidi Eze', sourceAccountNumber: '0987654321', sourceBankCode: '011' })]);
    expect((await decide({ action: 'complete', senderAccountName: 'Again', sourceAccountNumber: '1', sourceBankCode: '2' })).status).toBe(409);
  });
});
