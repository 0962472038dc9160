/**
 * Branding of the hosted pages, over HTTP and as pure rules: operator settings `branding` (defaults, merging, every
 * validation refusal in the error shape), what the pages' HTML carries (display name, logo, accent, the Widget's CSP),
 * the end-user decline sentences, the bank names and the Sendcash payer page's server-side checks.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BANKS, bankName, payerDetailsProblem } from '../src/domain/banks.js';
import { checkBranding, contrast, effectiveBranding, inkOnWhite, textOn } from '../src/domain/branding.js';
import { DECLINE_MESSAGES, GENERIC_DECLINE_MESSAGE, declineMessage } from '../src/domain/decline-messages.js';
import { client, newOperator, newUser, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';

// ---- pure rules ----------------------------------------------------------------------------------------------------

/** The decline categories as decision.ts declares them (its `DeclineCategory` union), read from the source. */
function declineCategories(): string[] {
  const src = readFileSync(new URL('../src/domain/decision.ts', import.meta.url), 'utf8');
  const m = /export type DeclineCategory\s*=([^;]+);/.exec(src);
  expect(m, 'decision.ts declares DeclineCategory').not.toBeNull();
  return [...m![1]!.matchAll(/'([a-z_]+)'/g)].map((x) => x[1]!);
}

describe('decline messages (domain/decline-messages.ts)', () => {
  it('every decline category of decision.ts has its own sentence for the payer', () => {
    const categories = declineCategories();
    expect(categories.length).toBeGreaterThanOrEqual(7);
    expect(categories).toEqual(expect.arrayContaining(['insufficient_funds', 'fraud_risk', 'limit_exceeded', 'deposit_required', 'user_declined',
      'credential_not_withdrawable', 'authentication_failed']));
    for (const c of categories) {
      const m = declineMessage(c);
      expect(m, c).toBe(DECLINE_MESSAGES[c as keyof typeof DECLINE_MESSAGES]);
      expect(m, c).not.toBe(GENERIC_DECLINE_MESSAGE);
    }
    expect(Object.keys(DECLINE_MESSAGES).sort()).toEqual([...categories].sort());
    expect(new Set(Object.values(DECLINE_MESSAGES)).size).toBe(categories.length);
  });

  it('each is one sentence in plain words: no raw category, no code, capitalised, one full stop at the end', () => {
    for (const [c, m] of [...Object.entries(DECLINE_MESSAGES), ['(generic)', GENERIC_DECLINE_MESSAGE] as const]) {
      expect(m, c).toMatch(/^[A-Z][^.!?]*\.$/);
      expect(m, c).not.toMatch(/_|decline_category|\bcategory\b|\berror\b|\bcode [0-9]/i);
      expect(m.length, c).toBeLessThanOrEqual(160);
    }
    expect(DECLINE_MESSAGES.credential_not_withdrawable).toMatch(/bank account/);
    expect(DECLINE_MESSAGES.insufficient_funds).toMatch(/money/);
  });

  it('an unknown, empty or inherited category gets the generic sentence', () => {
    for (const c of ['card_velocity', '', null, undefined, 'toString', '__proto__']) expect(declineMessage(c)).toBe(GENERIC_DECLINE_MESSAGE);
  });
});

describe('banks (domain/banks.ts)', () => {
  it('names the common Nigerian banks by their codes; an unknown code is "Bank <code>"', () => {
    const expected: Record<string, RegExp> = {
      '044': /^Access Bank$/, '058': /GTBank|Guaranty Trust/, '057': /^Zenith Bank$/, '011': /^First Bank of Nigeria$/, '033': /United Bank for Africa/,
      '032': /^Union Bank/, '035': /^Wema Bank$/, '050': /^Ecobank/, '070': /^Fidelity Bank$/, '214': /FCMB/, '221': /^Stanbic IBTC/,
      '232': /^Sterling Bank$/, '076': /^Polaris Bank$/, '082': /^Keystone Bank$/, '030': /^Heritage Bank$/, '215': /^Unity Bank$/, '301': /^Jaiz Bank$/,
      '101': /^Providus Bank$/, '100': /^SunTrust Bank$/,
    };
    for (const [code, name] of Object.entries(expected)) expect(bankName(code), code).toMatch(name);
    expect(bankName('999')).toBe('Bank 999');
    expect(bankName(' 044 ')).toBe('Access Bank');
    expect(new Set(BANKS.map((b) => b.code)).size).toBe(BANKS.length);
    expect(BANKS.map((b) => b.name)).toEqual([...BANKS.map((b) => b.name)].sort((a, b) => a.localeCompare(b)));
  });

  it("checks the payer's details: a 10-digit account number, a bank code of 3 to 6 digits", () => {
    expect(payerDetailsProblem({ sourceAccountNumber: '0123456789', sourceBankCode: '058', senderAccountName: 'Ada Obi' })).toBeUndefined();
    expect(payerDetailsProblem({ sourceBankCode: '999992' })).toBeUndefined();
    expect(payerDetailsProblem({})).toBeUndefined();
    for (const bad of ['12ab', '012345678', '01234567890', '01234 56789', '０１２３４５６７８９', '0123456789\n']) {
      expect(payerDetailsProblem({ sourceAccountNumber: bad })?.field, bad).toBe('sourceAccountNumber');
    }
    for (const bad of ['58', 'GTB', '1234567', '05 8']) expect(payerDetailsProblem({ sourceBankCode: bad })?.field, bad).toBe('sourceBankCode');
    expect(payerDetailsProblem({ senderAccountName: '   ' })?.field).toBe('senderAccountName');
  });
});

describe('branding rules (domain/branding.ts)', () => {
  it('text on any accent, and the accent as text on white, read at 4.5:1 or better', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffff }), (n) => {
      const c = `#${n.toString(16).padStart(6, '0')}`;
      const on = textOn(c);
      expect(['#ffffff', '#111111', '#000000']).toContain(on);
      expect(contrast(on, c)).toBeGreaterThanOrEqual(4.5);
      expect(contrast(inkOnWhite(c), '#ffffff')).toBeGreaterThanOrEqual(4.5);
    }), { numRuns: 2000 });
    expect(textOn('#1d4ed8')).toBe('#ffffff');
    expect(textOn('#facc15')).toBe('#111111');
    expect(inkOnWhite('#1d4ed8')).toBe('#1d4ed8');
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 5);
  });

  it('normalises what it accepts; null clears; a stored value no longer acceptable falls back to the default', () => {
    expect(checkBranding({ display_name: '  Lucky Star  ', accent_color: '#0F766E', logo_url: 'https://cdn.example/l.png', return_url: 'http://localhost:3000/cashier' }))
      .toEqual({ ok: { display_name: 'Lucky Star', accent_color: '#0f766e', logo_url: 'https://cdn.example/l.png', return_url: 'http://localhost:3000/cashier' } });
    expect(checkBranding({ logo_url: null })).toEqual({ ok: { logo_url: null } });
    expect(effectiveBranding(undefined, 'Acme')).toEqual({ display_name: 'Acme', logo_url: null, accent_color: null, return_url: null });
    expect(effectiveBranding({ logo_url: 'http://old.example/l.png', accent_color: 'red', display_name: 'X' }, 'Acme'))
      .toEqual({ display_name: 'X', logo_url: null, accent_color: null, return_url: null });
  });
});

// ---- over HTTP -----------------------------------------------------------------------------------------------------

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.stop();
});

const patch = (api: Api, body: unknown) => api.call('PATCH', '/operator/settings', body);

describe('operator settings: branding', () => {
  let keys: Keys;
  let api: Api;
  beforeAll(async () => {
    keys = await newOperator(s, 'Sandbox Operator');
    api = client(s.url, keys.sandbox);
  });

  it('GET shows the defaults: the operator\'s name, no logo, no accent, no return URL', async () => {
    const r = await api.get('/operator/settings');
    expect(r.status).toBe(200);
    expect(r.body.branding).toEqual({ display_name: 'Sandbox Operator', logo_url: null, accent_color: null, return_url: null });
  });

  it('PATCH sets, merges one level deep (other fields stay), null clears back to the default; both environments share it', async () => {
    const set = await patch(api, { branding: { display_name: 'Lucky Star Casino', logo_url: 'https://cdn.luckystar.example/logo.svg', accent_color: '#0F766E' } });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body.branding).toEqual({ display_name: 'Lucky Star Casino', logo_url: 'https://cdn.luckystar.example/logo.svg', accent_color: '#0f766e', return_url: null });

    const more = await patch(api, { branding: { return_url: 'https://luckystar.example/cashier' }, payload_version: '2024-05' });
    expect(more.body.branding).toEqual({ display_name: 'Lucky Star Casino', logo_url: 'https://cdn.luckystar.example/logo.svg', accent_color: '#0f766e', return_url: 'https://luckystar.example/cashier' });
    // Another part of the settings leaves the branding alone.
    expect((await patch(api, { rate_limits: { read: 500 } })).body.branding.accent_color).toBe('#0f766e');
    expect((await client(s.url, keys.production).get('/operator/settings')).body.branding.display_name).toBe('Lucky Star Casino');

    const cleared = await patch(api, { branding: { logo_url: null, display_name: null } });
    expect(cleared.body.branding).toEqual({ display_name: 'Sandbox Operator', logo_url: null, accent_color: '#0f766e', return_url: 'https://luckystar.example/cashier' });
    expect((await api.get('/operator/settings')).body.branding).toEqual(cleared.body.branding);
  });

  const bad: [string, Record<string, unknown>, string, string][] = [
    ['an http logo', { logo_url: 'http://cdn.example/logo.png' }, 'branding.logo_url', 'invalid_value'],
    ['a data: logo', { logo_url: 'data:image/png;base64,AAAA' }, 'branding.logo_url', 'invalid_value'],
    ['a javascript: logo', { logo_url: 'javascript:alert(1)' }, 'branding.logo_url', 'invalid_value'],
    ['a logo that is not a URL', { logo_url: 'logo.png' }, 'branding.logo_url', 'invalid_url'],
    ['a logo with a password', { logo_url: 'https://user:pw@cdn.example/l.png' }, 'branding.logo_url', 'invalid_value'],
    ['a logo on an odd host', { logo_url: 'https://a;script-src/l.png' }, 'branding.logo_url', 'invalid_url'],
    ['a logo URL over 2048 characters', { logo_url: `https://cdn.example/${'a'.repeat(2040)}` }, 'branding.logo_url', 'invalid_length'],
    ['a colour name', { accent_color: 'red' }, 'branding.accent_color', 'invalid_format'],
    ['a 3-digit colour', { accent_color: '#fff' }, 'branding.accent_color', 'invalid_format'],
    ['a colour with a non-hex digit', { accent_color: '#12345g' }, 'branding.accent_color', 'invalid_format'],
    ['a colour with alpha', { accent_color: '#11223344' }, 'branding.accent_color', 'invalid_format'],
    ['a CSS injection', { accent_color: '#000;}' }, 'branding.accent_color', 'invalid_format'],
    ['a colour that is a number', { accent_color: 0x112233 }, 'branding.accent_color', 'invalid_type'],
    ['an empty display name', { display_name: '' }, 'branding.display_name', 'invalid_length'],
    ['a blank display name', { display_name: '    ' }, 'branding.display_name', 'invalid_length'],
    ['a display name over 64 characters', { display_name: 'x'.repeat(65) }, 'branding.display_name', 'invalid_length'],
    ['a display name with a control character', { display_name: 'Lucky\u0007Star' }, 'branding.display_name', 'invalid_value'],
    ['a javascript: return URL', { return_url: 'javascript:alert(1)' }, 'branding.return_url', 'invalid_url'],
    ['an ftp return URL', { return_url: 'ftp://luckystar.example/' }, 'branding.return_url', 'invalid_url'],
    ['a relative return URL', { return_url: '/cashier' }, 'branding.return_url', 'invalid_url'],
  ];
  it.each(bad)('refuses %s: 400 in the error shape naming the field, and nothing changes', async (_what, branding, field, code) => {
    const before = (await api.get('/operator/settings')).body;
    const r = await patch(api, { branding });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(r.body.error).toEqual({ code, field, message: expect.any(String) });
    expect(r.body.error.message.length).toBeGreaterThan(10);
    expect((await api.get('/operator/settings')).body).toEqual(before);
  });

  it('refuses a branding that is not an object', async () => {
    const r = await patch(api, { branding: 'blue' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_type', field: 'branding' });
  });
});

// ---- the pages' HTML -----------------------------------------------------------------------------------------------

async function payPage(api: Api, body: Record<string, unknown> = {}) {
  const user = await newUser(api);
  const r = await api.post('/intent', { currency: 'USD', direction: 'cash_in', amount: 5000, user_id: user, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const res = await fetch(r.body.url);
  expect(res.status).toBe(200);
  return { intent: r.body as { id: string; url: string }, html: await res.text() };
}

describe('the pages carry the branding', () => {
  it('payment page: display name in the heading and title, the logo with its alt text, the accent and a readable text colour', async () => {
    const keys = await newOperator(s, 'Sandbox Operator');
    const api = client(s.url, keys.sandbox);
    const plain = await payPage(api);
    expect(plain.html).toContain('<h1 data-testid="brand-name">Sandbox Operator</h1>');
    expect(plain.html).not.toContain('<img');
    expect(plain.html).toContain('--accent:#1d4ed8;--on-accent:#ffffff');
    expect(plain.html).not.toContain('border-top:4px');

    expect((await patch(api, { branding: { display_name: 'Lucky <Star>', logo_url: 'https://cdn.luckystar.example/logo.png?v=1&x="2"', accent_color: '#FACC15' } })).status).toBe(200);
    const { html } = await payPage(api);
    expect(html).toContain('<title>Deposit $50.00 · Lucky &#60;Star&#62;</title>');
    expect(html).toContain('<h1 data-testid="brand-name">Lucky &#60;Star&#62;</h1>');
    expect(html).not.toContain('Sandbox Operator');
    expect(html).toMatch(/<img class="logo" src="https:\/\/cdn\.luckystar\.example\/logo\.png\?v=1&#38;x=%222%22" alt="Lucky &#60;Star&#62;"/);
    // A yellow accent gets near-black text, and a darker shade of it for text on white.
    expect(html).toMatch(/--accent:#facc15;--on-accent:#111111;--ink:#[0-9a-f]{6}/);
    expect(html).not.toContain('--ink:#facc15');
  });

  it('payment page of a decided intent: the decline is a sentence for the payer, not the raw category', async () => {
    const keys = await newOperator(s, 'Decliner');
    const api = client(s.url, keys.sandbox);
    const user = await newUser(api);
    const r = await api.post('/intent', { currency: 'USD', direction: 'cash_in', amount: 6666, user_id: user });
    const u = new URL(r.body.url);
    const d = await client(s.url).post(`${u.pathname}/decision`, { s: u.searchParams.get('s'), action: 'approve' });
    // The API keeps the raw category.
    expect(d.body).toMatchObject({ status: 'declined', decline_category: 'fraud_risk' });
    expect((await api.get(`/intent/${r.body.id}`)).body.decline_category).toBe('fraud_risk');
    const html = await (await fetch(r.body.url)).text();
    expect(html).toContain(`<strong class="outcome">Payment declined</strong> <span class="reason" data-testid="decline-message">${DECLINE_MESSAGES.fraud_risk.replace(/'/g, '&#39;')}</span>`);
    expect(html).not.toMatch(/fraud risk/);
  });

  it('widget page: the display name in its title, the accent, a small logo, and the logo\'s origin (only) in its CSP img-src', async () => {
    const keys = await newOperator(s, 'Widget Op');
    const api = client(s.url, keys.sandbox);
    const user = await newUser(api);
    const url = async () => (await api.post(`/user/${user}/url`, { direction: 'cash_in', type: 'card_only' })).body.url as string;
    const before = await fetch(await url());
    expect(before.headers.get('content-security-policy')).toContain("img-src 'self' data:;");
    const plain = await before.text();
    expect(plain).toContain('<title>Payment details · Widget Op</title>');
    expect(plain).not.toContain('<img');

    expect((await patch(api, { branding: { display_name: 'Lucky Star', logo_url: 'https://cdn.luckystar.example:8443/w/logo.png', accent_color: '#7c3aed' } })).status).toBe(200);
    const res = await fetch(await url());
    expect(res.headers.get('content-security-policy')).toContain("img-src 'self' data: https://cdn.luckystar.example:8443;");
    const html = await res.text();
    expect(html).toContain('<title>Payment details · Lucky Star</title>');
    expect(html).toContain('<img class="logo" src="https://cdn.luckystar.example:8443/w/logo.png" alt="Lucky Star"');
    expect(html).toContain('--ac:#7c3aed;--on-ac:#ffffff');
  });

  it('an old http logo stored before the rule is neither shown nor allowed by the CSP', async () => {
    const keys = await newOperator(s, 'Old Op');
    await s.running.deps.db.query(`UPDATE operators SET settings = settings || '{"branding": {"logo_url": "http://cdn.example/l.png", "accent_color": "blue"}}' WHERE id = $1`, [keys.id]);
    const api = client(s.url, keys.sandbox);
    const { html } = await payPage(api);
    expect(html).not.toContain('<img');
    expect(html).toContain('--accent:#1d4ed8');
    const user = await newUser(api);
    const w = await fetch((await api.post(`/user/${user}/url`, { direction: 'cash_in' })).body.url);
    expect(w.headers.get('content-security-policy')).toContain("img-src 'self' data:;");
    expect(await w.text()).not.toContain('<img');
  });
});

// ---- the Sendcash payer page ---------------------------------------------------------------------------------------

describe('the Sendcash payer page', () => {
  let api: Api;
  let secretKey: string;
  let publicKey: string;
  let refs = 0;
  beforeAll(async () => {
    const keys = await newOperator(s, 'Naija Bets Ltd');
    api = client(s.url, keys.sandbox);
    const ob = await api.post('/sendcash/onboarding', { webhook_url: 'https://hooks.example.com/sendcash' });
    expect(ob.status).toBe(200);
    ({ secret_key: secretKey, public_key: publicKey } = ob.body);
  });

  async function charge(bank = '044', amount = 2500.5) {
    const reference = `order-${++refs}`;
    const kobo = Math.round(amount * 100);
    const signature = createHmac('sha256', secretKey).update(`user_1:${reference}:${kobo}:0690000031:${bank}`).digest('hex');
    const r = await client(s.url).post('/sendcash/charges', {
      publicKey, signature, userId: 'user_1', paymentReference: reference, amount, destinationAccountNumber: '0690000031', destinationBankCode: bank,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return { reference, url: new URL(r.body.payerUrl as string), id: r.body.id as string };
  }

  it('names the bank instead of its code, gives the transfer instructions, and carries the branding', async () => {
    const c = await charge('058');
    let html = await (await fetch(c.url)).text();
    expect(html).toContain('<dd data-testid="bank-name">Guaranty Trust Bank (GTBank)</dd>');
    expect(html).not.toContain('Bank code</dt>');
    expect(html).toMatch(/<section id="how" data-testid="instructions">\s*<h2>How to pay<\/h2>\s*<ol class="steps">[\s\S]*Send exactly <strong>₦2,500\.50<\/strong> to account <strong>0690000031<\/strong> at <strong>Guaranty Trust Bank \(GTBank\)<\/strong>[\s\S]*<strong>order-\d+<\/strong> in the transfer's description/);
    expect(html).toContain('<h1 style="font-size:1.1rem" data-testid="brand-name">Naija Bets Ltd</h1>');
    expect(html).toContain('<label for="f-account">Account number</label>');
    expect(html).toContain('--accent:#0b6e4f');

    expect((await patch(api, { branding: { display_name: 'Naija Bets', logo_url: 'https://naijabets.example/logo.png', accent_color: '#14532d' } })).status).toBe(200);
    const unknown = await charge('999');
    html = await (await fetch(unknown.url)).text();
    expect(html).toContain('<dd data-testid="bank-name">Bank 999</dd>');
    expect(html).toContain('<title>Pay by bank transfer · Naija Bets</title>');
    expect(html).toContain('alt="Naija Bets"');
    expect(html).toContain('--accent:#14532d;--on-accent:#ffffff');
  });

  it('the decision endpoint refuses an account number that is not 10 digits, or a bank code that is not digits (400, field named); the transfer stays pending', async () => {
    const c = await charge();
    const decide = (body: Record<string, unknown>) => client(s.url).post(`${c.url.pathname}/decision`, { t: c.url.searchParams.get('t'), action: 'complete', senderAccountName: 'Ngozi Okafor', sourceBankCode: '058', ...body });
    for (const account of ['12ab', '012345678', '01234567890', '0123 456789', ' 0123456789']) {
      const r = await decide({ sourceAccountNumber: account });
      expect(r.status, account).toBe(400);
      expect(r.body.error, account).toMatchObject({ code: 'invalid_format', field: 'sourceAccountNumber', message: expect.stringMatching(/10-digit/) });
    }
    const bank = await decide({ sourceAccountNumber: '0123456789', sourceBankCode: 'GTB' });
    expect(bank.body.error).toMatchObject({ code: 'invalid_format', field: 'sourceBankCode' });
    // Fail is checked the same way (the sandbox payer page sends what was typed with it too).
    expect((await decide({ action: 'fail', sourceAccountNumber: '12ab' })).status).toBe(400);
    expect((await api.get(`/sendcash/transfers/${c.id}`)).body.status).toBe('Pending');

    const ok = await decide({ sourceAccountNumber: '0123456789' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'Completed', sourceAccountNumber: '0123456789', sourceBankCode: '058' });
    // Decided: a repeat is the 409, whatever was typed.
    expect((await decide({ sourceAccountNumber: '12ab' })).status).toBe(409);
  });
});
