/**
 * `cashwire trigger <type>`: makes the real sandbox objects that emit an event, through the public API (a demo user,
 * a payment, a refund, a dispute, a limit request, a Sendcash transfer, a throwaway endpoint), then finds the events
 * they wrote (`GET /events`) and prints them. Sandbox keys only.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { EVENT_TYPES, SENDCASH_EVENT_TYPES, type EventType, type SendcashEventType } from '@cashwire/webhooks';
import type { Command } from 'commander';
import { print, remote, RemoteError, withRemote, type Remote, type RemoteOptions } from './remote.js';

export type TriggerType = EventType | SendcashEventType;

interface PublicEvent { id: string; type: string; intent_id: string | null; created_at: string; data: Record<string, any> }

/** What a recipe made: the events it wrote (the triggered type among them) and the objects behind them. */
interface Made { events: PublicEvent[]; objects: Record<string, string>; notes?: string[] }

interface Ctx {
  r: Remote;
  opts: TriggerOptions;
}

interface TriggerOptions extends RemoteOptions {
  json?: boolean;
  list?: boolean;
  webhookUrl?: string;
  sendcashSecretKey?: string;
  sendcashPublicKey?: string;
  rotateSendcashKey?: boolean;
}

/** An error of the command itself (not of the API): printed as `cashwire: <message>`, exit 1. */
class TriggerError extends Error {}

type Recipe = { what: string; run(c: Ctx): Promise<Made> } | { cannot: string };

/** The demo user's deposit: small, so that the daily ($2,500) and monthly ($10,000) limits last many triggers. */
const DEPOSIT = 1000;
const DEMO_TAG = 'cli-trigger';

// ---------------------------------------------------------------------------------------------------------------
// HTTP helpers

/** A request whose non-2xx answer is a result, not an error (a declined authorization or refund answers 401 with a body). */
function call(r: Remote, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return r.call(method, path, body);
}

/** `call`, where anything but one of `ok` is the API's error. */
async function expect(r: Remote, method: string, path: string, body: unknown, ok: number[] = [200, 201]): Promise<any> {
  const res = await call(r, method, path, body);
  if (!ok.includes(res.status)) {
    const e = res.body?.error;
    throw new RemoteError(res.status, e?.code ?? `http_${res.status}`, `${method} ${path}: ${e?.message ?? `HTTP ${res.status}`}`);
  }
  return res.body;
}

const q = (params: Record<string, string | number | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) s.set(k, String(v));
  return s.toString();
};

/** The events of one intent, oldest first (what the recipe made, for an intent it created). */
async function eventsOfIntent(r: Remote, intentId: string): Promise<PublicEvent[]> {
  const page = await r.request<{ data: PublicEvent[] }>('GET', `/events?${q({ intent_id: intentId, limit: 100 })}`);
  return page.data.reverse();
}

/** The newest events of some types whose data matches, oldest first. */
async function eventsWhere(r: Remote, types: string[], match: (e: PublicEvent) => boolean): Promise<PublicEvent[]> {
  const found: PublicEvent[] = [];
  for (const type of types) {
    const page = await r.request<{ data: PublicEvent[] }>('GET', `/events?${q({ type, limit: 100 })}`);
    found.push(...page.data.filter(match));
  }
  return found.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

// ---------------------------------------------------------------------------------------------------------------
// The objects

function userBody(tag: string) {
  return {
    name: { first: 'Demo', last: 'Trigger' },
    email: 'cli-trigger@example.com',
    phone_number: '+12125550123',
    address: { address_line_1: '1 Main St', locality: 'Albany', administrative_area: 'NY', postal_code: '12207', country: 'US' },
    date_of_birth: '1990-12-10',
    government_id: { type: 'drivers_license', last4: '1234', state: 'NY' },
    identity_verified: true,
    tag,
  };
}

/** The demo user (tag `cli-trigger`, the same user every time), or a fresh one (limit requests: one open per user). */
async function user(c: Ctx, fresh = false): Promise<string> {
  const tag = fresh ? `${DEMO_TAG}-${randomBytes(6).toString('hex')}` : DEMO_TAG;
  return (await expect(c.r, 'POST', '/user', userBody(tag))).id;
}

/**
 * An approved deposit of the demo user, by POST /token + POST /authorize (or with `credentialId`). If the demo user
 * has used up its limits (many triggers in a day or a month), a fresh user pays instead.
 */
async function approvedDeposit(c: Ctx, opts: { credential?: { type: string; card_last4?: string } } = {}): Promise<{ user: string; intent: any; credential?: string }> {
  for (const fresh of [false, true]) {
    const u = await user(c, fresh);
    let auth: Record<string, unknown>;
    let credential: string | undefined;
    if (opts.credential) {
      credential = (await expect(c.r, 'POST', '/sandbox/credential', { user_id: u, ...opts.credential })).id as string;
      auth = { credential_id: credential };
    } else {
      auth = { token: (await expect(c.r, 'POST', '/token', { user_id: u, type: 'card_only' })).token };
    }
    const res = await call(c.r, 'POST', '/authorize', { amount: DEPOSIT, currency: 'USD', direction: 'cash_in', ...auth });
    if (res.status === 200 && res.body?.status === 'approved') return { user: u, intent: res.body, ...(credential ? { credential } : {}) };
    if (res.status === 401 && res.body?.decline_category === 'limit_exceeded' && !fresh) continue;
    throw new TriggerError(`the deposit was not approved (HTTP ${res.status}): ${JSON.stringify(res.body?.error ?? { status: res.body?.status, decline_category: res.body?.decline_category })}`);
  }
  throw new TriggerError('the deposit was not approved');
}

async function intentMade(c: Ctx, intentId: string, objects: Record<string, string>): Promise<Made> {
  return { events: await eventsOfIntent(c.r, intentId), objects };
}

async function deposit(c: Ctx, settle: boolean): Promise<{ user: string; intent: string }> {
  const d = await approvedDeposit(c);
  if (settle) await expect(c.r, 'POST', '/simulate/settlement', { intent_id: d.intent.id });
  return { user: d.user, intent: d.intent.id };
}

async function dispute(c: Ctx, result?: 'won' | 'lost'): Promise<Made> {
  const d = await deposit(c, true);
  const dsp = await expect(c.r, 'POST', '/simulate/dispute', { intent_id: d.intent, code: '10.4' });
  if (result) await expect(c.r, 'POST', '/simulate/dispute/resolve', { dispute_id: dsp.id, result });
  return intentMade(c, d.intent, { user: d.user, intent: d.intent, dispute: dsp.id });
}

const LIMIT_TYPES = ['user.limits_request', 'user.limits_request.updated', 'user.limits_request.partial_approval', 'user.limits_request.declined'];

/** A fresh user asks for twice its daily limit; then the sandbox decides, if asked. */
async function limitRequest(c: Ctx, decision?: 'approved' | 'partial' | 'declined'): Promise<Made> {
  const u = await user(c, true);
  const current = (await expect(c.r, 'GET', `/user/${u}`, undefined)).limits.daily_limit as number;
  const requested = Math.max(current * 2, current + 100_000);
  const req = await expect(c.r, 'POST', `/user/${u}/limits_request`, { requested_daily_limit: requested });
  if (decision) {
    const approved = decision === 'approved' ? requested : decision === 'partial' ? Math.round((current + requested) / 2) : undefined;
    await expect(c.r, 'POST', '/simulate/limits_decision', { user_id: u, decision, ...(approved !== undefined ? { approved_daily_limit: approved } : {}) });
  }
  return { events: await eventsWhere(c.r, LIMIT_TYPES, (e) => e.data?.user_id === u), objects: { user: u, limit_request: req.id } };
}

/** The charge signature of Sendcash Pay: hex HMAC-SHA256(secret key, user:reference:kobo:account:bank). */
function chargeSignature(secretKey: string, userId: string, reference: string, kobo: number, account: string, bank: string): string {
  return createHmac('sha256', secretKey).update(`${userId}:${reference}:${kobo}:${account}:${bank}`).digest('hex');
}

/**
 * Payment.Status: a Sendcash charge, completed by the sandbox simulator. A charge is signed with the operator's
 * Sendcash secret key, which Cashwire shows once: at the first onboarding (which the trigger does when the sandbox is
 * not onboarded yet, and then prints the keys), from --sendcash-secret-key / CASHWIRE_SENDCASH_SECRET_KEY, or a new
 * one with --rotate-sendcash-key (the old one stops working).
 */
async function paymentStatus(c: Ctx): Promise<Made> {
  const notes: string[] = [];
  const objects: Record<string, string> = {};
  let secretKey = c.opts.sendcashSecretKey ?? process.env.CASHWIRE_SENDCASH_SECRET_KEY;
  let publicKey = c.opts.sendcashPublicKey ?? process.env.CASHWIRE_SENDCASH_PUBLIC_KEY;
  const onboard = async () => {
    const ob = await expect(c.r, 'POST', '/sendcash/onboarding', { webhook_url: c.opts.webhookUrl ?? 'http://localhost:3000/webhooks/sendcash' });
    objects.endpoint = ob.endpoint_id;
    if (!ob.secret_key) return false;
    secretKey = ob.secret_key;
    publicKey = ob.public_key;
    notes.push(`Onboarded this sandbox to Sendcash Pay (webhook URL ${ob.webhook_url}). Shown once, keep them:`,
      `  public key       ${ob.public_key}`, `  signature token  ${ob.signature_token}`, `  secret key       ${ob.secret_key}`,
      `Next time: export CASHWIRE_SENDCASH_PUBLIC_KEY=${ob.public_key} CASHWIRE_SENDCASH_SECRET_KEY=${ob.secret_key}`);
    return true;
  };
  if (!secretKey || !publicKey) {
    if (c.opts.rotateSendcashKey) {
      try {
        const k = await expect(c.r, 'POST', '/sendcash/keys/rotate', {});
        secretKey = k.secret_key;
        publicKey = k.public_key;
        notes.push(`Rotated the Sendcash secret key (the old one no longer works). Shown once: ${k.secret_key}`,
          `Next time: export CASHWIRE_SENDCASH_PUBLIC_KEY=${k.public_key} CASHWIRE_SENDCASH_SECRET_KEY=${k.secret_key}`);
      } catch (err) {
        if (!(err instanceof RemoteError && err.code === 'not_onboarded')) throw err;
        await onboard();
      }
    } else {
      // Onboarded already (its endpoint exists): the keys were shown then, and only then.
      const endpoints = (await expect(c.r, 'GET', '/webhook/endpoints', undefined)).data as Array<{ format: string; events: string[] }>;
      const onboarded = endpoints.some((e) => e.format === 'sendcash' && e.events.includes('Payment.Status'));
      if (!onboarded) await onboard();
    }
  }
  if (!secretKey || !publicKey) {
    throw new TriggerError('this sandbox is already onboarded to Sendcash Pay, and a charge is signed with its keys (shown at onboarding): '
      + 'pass --sendcash-public-key pk_test_… and --sendcash-secret-key sk_sc_… (or set CASHWIRE_SENDCASH_PUBLIC_KEY and CASHWIRE_SENDCASH_SECRET_KEY), '
      + 'or --rotate-sendcash-key to make a new secret key (the old one stops working)');
  }
  const userId = 'cli-trigger';
  const reference = `cli-trigger-${randomBytes(8).toString('hex')}`;
  const kobo = 250_050;
  const account = '0690000031';
  const bank = '044';
  const charge = await expect(c.r, 'POST', '/sendcash/charges', {
    publicKey, signature: chargeSignature(secretKey, userId, reference, kobo, account, bank), userId, paymentReference: reference,
    amount: '2500.50', destinationAccountNumber: account, destinationBankCode: bank, description: 'cashwire trigger Payment.Status', name: 'Ngozi Okafor',
  });
  await expect(c.r, 'POST', `/simulate/transfer/${charge.id}/complete`, {
    senderAccountName: 'Ngozi Okafor', sourceAccountNumber: '0034567890', sourceAccountType: 'personal', sourceBankCode: '058',
  });
  objects.transfer = charge.id;
  objects.reference = reference;
  return { events: await eventsWhere(c.r, ['Payment.Status'], (e) => e.data?.paymentReference === reference), objects, notes };
}

/** endpoint.disabled: a throwaway endpoint, disabled (which writes the event), then deleted. */
async function endpointDisabled(c: Ctx): Promise<Made> {
  const ep = await expect(c.r, 'POST', '/webhook/endpoints', {
    url: 'http://127.0.0.1:9/cashwire-trigger', events: ['endpoint.recovered'], description: 'cashwire trigger endpoint.disabled (throwaway)',
  });
  try {
    await expect(c.r, 'POST', `/webhook/endpoints/${ep.id}/disable`, undefined);
    return { events: await eventsWhere(c.r, ['endpoint.disabled'], (e) => e.data?.endpoint_id === ep.id), objects: { endpoint: ep.id }, notes: [`The throwaway endpoint ${ep.id} was deleted.`] };
  } finally {
    await call(c.r, 'DELETE', `/webhook/endpoints/${ep.id}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The recipes: one per catalog type (the compiler checks that none is missing)

export const RECIPES: Record<TriggerType, Recipe> = {
  'intent.approved': {
    what: 'a $10.00 deposit of the demo user, approved by POST /token + POST /authorize',
    run: async (c) => { const d = await deposit(c, false); return intentMade(c, d.intent, d); },
  },
  'intent.declined': {
    what: 'a $22.00 deposit (the sandbox decline amount), declined insufficient_funds',
    async run(c) {
      const u = await user(c);
      const token = (await expect(c.r, 'POST', '/token', { user_id: u, type: 'card_only' })).token;
      const res = await call(c.r, 'POST', '/authorize', { amount: 2200, currency: 'USD', direction: 'cash_in', token });
      if (res.status !== 401 || res.body?.status !== 'declined') throw new TriggerError(`expected a decline, got HTTP ${res.status}: ${JSON.stringify(res.body)}`);
      return intentMade(c, res.body.id, { user: u, intent: res.body.id });
    },
  },
  'intent.canceled': {
    what: 'a deposit intent (POST /intent), canceled (POST /intent/{id}/cancel)',
    async run(c) {
      const u = await user(c);
      const intent = await expect(c.r, 'POST', '/intent', { direction: 'cash_in', user_id: u, amount: DEPOSIT, currency: 'USD' });
      await expect(c.r, 'POST', `/intent/${intent.id}/cancel`, undefined);
      return intentMade(c, intent.id, { user: u, intent: intent.id });
    },
  },
  'intent.settled': {
    what: 'an approved deposit, settled at once (POST /simulate/settlement)',
    run: async (c) => { const d = await deposit(c, true); return intentMade(c, d.intent, d); },
  },
  'refund.approved': {
    what: 'a settled deposit, refunded (POST /refund)',
    async run(c) {
      const d = await deposit(c, true);
      const refund = await expect(c.r, 'POST', '/refund', { intent_id: d.intent });
      return intentMade(c, d.intent, { ...d, refund: refund.id });
    },
  },
  'refund.declined': {
    what: 'a deposit with the sandbox card ending 9301 (POST /sandbox/credential), whose refund is declined',
    async run(c) {
      const d = await approvedDeposit(c, { credential: { type: 'card_only_debit', card_last4: '9301' } });
      const refund = await call(c.r, 'POST', '/refund', { intent_id: d.intent.id });
      if (refund.body?.status !== 'declined') throw new TriggerError(`expected a declined refund, got HTTP ${refund.status}: ${JSON.stringify(refund.body)}`);
      return intentMade(c, d.intent.id, { user: d.user, credential: d.credential!, intent: d.intent.id, refund: refund.body.id });
    },
  },
  'dispute.created': { what: 'a settled deposit, disputed (POST /simulate/dispute, code 10.4)', run: (c) => dispute(c) },
  'dispute.won': { what: 'a disputed deposit, resolved won (POST /simulate/dispute/resolve)', run: (c) => dispute(c, 'won') },
  'dispute.lost': { what: 'a disputed deposit, resolved lost (debits the dispute account)', run: (c) => dispute(c, 'lost') },
  'user.limits_request': { what: 'a new user asks for a higher daily limit (POST /user/{id}/limits_request)', run: (c) => limitRequest(c) },
  'user.limits_request.updated': { what: 'a limit request, approved (POST /simulate/limits_decision)', run: (c) => limitRequest(c, 'approved') },
  'user.limits_request.partial_approval': { what: 'a limit request, partly approved', run: (c) => limitRequest(c, 'partial') },
  'user.limits_request.declined': { what: 'a limit request, declined', run: (c) => limitRequest(c, 'declined') },
  'delivery.exhausted': {
    cannot: 'it is sent when a delivery runs out of attempts (in the sandbox: 3 over 11 minutes) or goes dead; the CLI does '
      + 'not fake one. Register an endpoint that fails (cashwire endpoints create http://127.0.0.1:9/), trigger an event, and let '
      + 'its retries run out (or move the sandbox clock past them: cashwire clock).',
  },
  'endpoint.disabled': { what: 'a throwaway endpoint, disabled (POST /webhook/endpoints/{id}/disable), then deleted', run: endpointDisabled },
  'endpoint.recovered': {
    cannot: "it is sent when an endpoint's open circuit (5 failures in a row) closes on a successful probe 60 s later; "
      + 'the CLI cannot make a receiver fail and recover. Point an endpoint at a receiver that fails, then fix the receiver.',
  },
  'Payment.Status': {
    what: 'a Sendcash Pay charge (onboarding the sandbox first if needed), completed (POST /simulate/transfer/{id}/complete)',
    run: paymentStatus,
  },
};

export const TRIGGER_TYPES: TriggerType[] = [...EVENT_TYPES, ...SENDCASH_EVENT_TYPES];

function listText(): string {
  const w = Math.max(...TRIGGER_TYPES.map((t) => t.length));
  return TRIGGER_TYPES.map((t) => {
    const r = RECIPES[t];
    return `  ${t.padEnd(w)}  ${'what' in r ? r.what : `(cannot be triggered) ${r.cannot.split(';')[0]}`}`;
  }).join('\n');
}

function describe(type: string, m: Made): string {
  const mine = m.events.filter((e) => e.type === type);
  const others = m.events.filter((e) => e.type !== type);
  const objs = Object.entries(m.objects).filter(([k]) => k !== 'reference').map(([k, v]) => `${k.replace('_', ' ')} ${v}`).join(', ');
  const lines = [`Triggered ${type}: ${mine.map((e) => e.id).join(', ')}${objs ? ` (${objs})` : ''}`];
  if (others.length) lines.push(`  also written: ${others.map((e) => `${e.type} ${e.id}`).join(', ')}`);
  for (const n of m.notes ?? []) lines.push(n);
  return lines.join('\n');
}

export async function trigger(type: string | undefined, o: TriggerOptions): Promise<void> {
  if (o.list) {
    if (o.json) print(TRIGGER_TYPES.map((t) => { const r = RECIPES[t]; return { type: t, ...('what' in r ? { triggerable: true, what: r.what } : { triggerable: false, reason: r.cannot }) }; }));
    else process.stdout.write(`The event types (cashwire trigger <type>):\n${listText()}\n`);
    return;
  }
  if (!type) throw new TriggerError(`name an event type: cashwire trigger <type>. The types:\n${listText()}`);
  const recipe = (RECIPES as Record<string, Recipe>)[type];
  if (!recipe || !Object.hasOwn(RECIPES, type)) throw new TriggerError(`unknown event type "${type}". The types:\n${listText()}`);
  if ('cannot' in recipe) throw new TriggerError(`${type} cannot be triggered: ${recipe.cannot}`);
  const r = remote(o);
  const key = await r.request<{ name: string; environment: string }>('POST', '/keys/verify');
  if (key.environment !== 'sandbox') {
    throw new TriggerError(`cashwire trigger works with a sandbox key only: this is a ${key.environment} key of ${key.name}, and trigger makes real objects. Use a sandbox key (sk_sandbox_…).`);
  }
  const made = await recipe.run({ r, opts: o });
  if (!made.events.some((e) => e.type === type)) throw new TriggerError(`the objects were made (${JSON.stringify(made.objects)}) but no ${type} event was found`);
  if (o.json) {
    const event = made.events.filter((e) => e.type === type).at(-1)!;
    print({ type, event_id: event.id, event, objects: made.objects, events: made.events.map((e) => ({ id: e.id, type: e.type })), ...(made.notes?.length ? { notes: made.notes } : {}) });
  } else {
    process.stdout.write(`${describe(type, made)}\n`);
  }
}

export function register(program: Command): void {
  withRemote(
    program
      .command('trigger [type]')
      .description('make the real sandbox objects that emit an event of <type>, through the API, and print the event ids (sandbox keys only; '
        + 'uses --api-url/--api-key or CASHWIRE_API_URL/CASHWIRE_API_KEY). --list shows the types')
      .option('--list', 'list the event types')
      .option('--json', 'print JSON')
      .option('--webhook-url <url>', 'Payment.Status: the Sendcash webhook URL, if the sandbox is not onboarded yet (default http://localhost:3000/webhooks/sendcash)')
      .option('--sendcash-secret-key <key>', 'Payment.Status: the Sendcash secret key sk_sc_… (env CASHWIRE_SENDCASH_SECRET_KEY)')
      .option('--sendcash-public-key <key>', 'Payment.Status: the Sendcash public key pk_test_… (env CASHWIRE_SENDCASH_PUBLIC_KEY)')
      .option('--rotate-sendcash-key', 'Payment.Status: make a new Sendcash secret key to sign with (the old one stops working)'),
  ).action(async (type: string | undefined, o: TriggerOptions) => {
    try {
      await trigger(type, o);
    } catch (err) {
      if (err instanceof TriggerError) {
        process.stderr.write(`cashwire: ${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
  });
}
