/**
 * A casino cashier integrated with Cashwire the way Push Cash asks an integrator to:
 *   1. register the player (KYC details, tag = our player id) once, and keep the returned user id;
 *   2. commit our own transaction record, THEN create the intent with X-Idempotency-Key = tag = our transaction id;
 *   3. send the player to the intent's `url`; on the way back, confirm with GET /intent (never the query string alone);
 *   4. verify each webhook, apply each event id once, and move the status only forward (SDK `nextStatus`), so the
 *      redirect and the webhooks may arrive in any order, any number of times, and the balance moves exactly once.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import pg from 'pg';
import { amountInCents, expressHandler, postgresStore, statusOf, tagOf } from '@cashwire/webhooks';
import { cashwireClient, CashwireError } from './cashwire.js';
import { applyStatus, inTransaction, migrate, playerView } from './db.js';
import { cashierPage, dollars } from './pages.js';

/**
 * @typedef {object} MerchantConfig
 * @property {string} databaseUrl the merchant's own PostgreSQL database (MERCHANT_DATABASE_URL)
 * @property {string} cashwireUrl where Cashwire's API and /sdk/push.umd.js are (CASHWIRE_URL)
 * @property {string} cashwireApiKey a sandbox or production key (CASHWIRE_API_KEY)
 * @property {string} webhookSecret 32 to 4096 characters; sent with each intent, checked on each webhook
 * @property {string} [publicUrl] how browsers and Cashwire reach this merchant; default: the address it listens on
 * @property {string} [sessionSecret] signs the player cookie; default: random (sessions end with the process)
 * @property {number} [port] default 4100; 0 picks a free port
 * @property {string} [host] default 0.0.0.0
 */

/** The details our (imaginary) KYC check verified for the demo player. */
const DEMO_KYC = {
  name: { first: 'Ada', last: 'Lovelace' },
  email: 'ada@example.com',
  phone_number: '+12125550123',
  address: { address_line_1: '1 Main St', locality: 'Albany', administrative_area: 'NY', postal_code: '12207', country: 'US' },
  date_of_birth: '1990-12-10',
  government_id: { type: 'drivers_license', last4: '1234', state: 'NY' },
  identity_verified: true,
};

const COOKIE = 'cashier_player';

/** "50", "50.5", "50.00" to cents; null unless a positive amount with at most two decimals. */
export function parseAmount(/** @type {unknown} */ input) {
  const m = typeof input === 'string' || typeof input === 'number' ? /^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(String(input)) : null;
  if (!m) return null;
  const cents = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return cents > 0 ? cents : null;
}

/**
 * What the player reads when they come back.
 * @param {import('./db.js').Transaction} t
 */
function describe(t) {
  const what = `${t.direction === 'deposit' ? 'Deposit' : 'Withdrawal'} of ${dollars(t.amount_cents)}`;
  switch (t.status) {
    case 'approved':
    case 'settled':
      return `${what} approved.`;
    case 'declined':
      return `${what} declined${t.decline_category ? `: ${t.decline_category.replace(/_/g, ' ')}` : ''}.`;
    case 'canceled':
      return `${what} canceled.`;
    case 'pending':
      return `${what} is pending review.`;
    default:
      return `${what} is not finished yet.`;
  }
}

/**
 * @param {MerchantConfig & { publicUrl: string }} config
 * @param {pg.Pool} pool
 */
export function createApp(config, pool) {
  const cashwire = cashwireClient({ url: config.cashwireUrl, apiKey: config.cashwireApiKey });
  const sessionSecret = config.sessionSecret ?? randomBytes(32).toString('hex');
  const app = express();
  app.disable('x-powered-by');

  // --- the player's session: a signed cookie holding the player id (a stand-in for the casino's real login) -------

  /** @param {string} id */
  const sign = (id) => `${id}.${createHmac('sha256', sessionSecret).update(id).digest('base64url')}`;

  /** @param {express.Request} req @returns {string | null} */
  function sessionPlayer(req) {
    const raw = (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
    const id = raw?.slice(0, raw.lastIndexOf('.'));
    if (!raw || !id) return null;
    const a = Buffer.from(raw);
    const b = Buffer.from(sign(id));
    return a.length === b.length && timingSafeEqual(a, b) ? id : null;
  }

  /** The session's player, or a new demo player (and its cookie). @param {express.Request} req @param {express.Response} res */
  async function playerFor(req, res) {
    const id = sessionPlayer(req);
    const existing = id ? await playerView(pool, id) : null;
    if (existing) return existing;
    const newId = `player_${randomBytes(8).toString('hex')}`;
    await pool.query('INSERT INTO players (id, name) VALUES ($1, $2)', [newId, `${DEMO_KYC.name.first} ${DEMO_KYC.name.last}`]);
    res.cookie(COOKIE, sign(newId), { httpOnly: true, sameSite: 'lax', path: '/' });
    return /** @type {NonNullable<Awaited<ReturnType<typeof playerView>>>} */ (await playerView(pool, newId));
  }

  /** The Cashwire user id of a player, registering the player on first use. @param {string} playerId */
  async function cashwireUser(playerId) {
    const { rows } = await pool.query('SELECT cashwire_user_id FROM players WHERE id = $1', [playerId]);
    if (rows[0]?.cashwire_user_id) return /** @type {string} */ (rows[0].cashwire_user_id);
    // The same tag always answers the same user, so a lost answer or a race registers nobody twice.
    const user = await cashwire.registerUser({ ...DEMO_KYC, tag: playerId }, `register:${playerId}`);
    await pool.query('UPDATE players SET cashwire_user_id = $2 WHERE id = $1', [playerId, user.id]);
    return user.id;
  }

  // --- pages ------------------------------------------------------------------------------------------------------

  app.get('/', async (req, res) => {
    const player = await playerFor(req, res);
    res.type('html').set('cache-control', 'no-store').send(cashierPage({ cashwireUrl: config.cashwireUrl, player }));
  });

  // Where the payment page sends the player back: ?intent_id=…&status=…. The query only says which intent to look
  // at; its status comes from Cashwire (GET /intent), and it is applied exactly like a webhook would be.
  app.get('/return', async (req, res) => {
    const player = await playerFor(req, res);
    const intentId = typeof req.query.intent_id === 'string' ? req.query.intent_id : '';
    /** @type {{ text: string, kind: string } | null} */
    let message = { text: 'We could not confirm this payment yet. Your balance updates as soon as it is confirmed.', kind: 'pending' };
    if (intentId) {
      try {
        const intent = await cashwire.getIntent(intentId);
        const status = intent.transactions?.some((t) => t.status === 'settled') ? 'settled' : intent.status;
        const transactionId = intent.tag ?? intent.idempotency_key;
        const t = transactionId
          ? await inTransaction(pool, (tx) => applyStatus(tx, {
            transactionId, intentId: intent.id, amountCents: intent.amount,
            status: /** @type {import('@cashwire/webhooks').TransactionStatus} */ (status),
            declineCategory: intent.decline_category, source: 'redirect',
          }))
          : null;
        if (t && t.player_id === player.id) message = { text: describe(t), kind: t.status };
      } catch (err) {
        if (!(err instanceof CashwireError)) throw err;
        console.warn('[merchant] could not confirm intent', intentId, err.message);
      }
    }
    const view = /** @type {NonNullable<Awaited<ReturnType<typeof playerView>>>} */ (await playerView(pool, player.id));
    res.type('html').set('cache-control', 'no-store').send(cashierPage({ cashwireUrl: config.cashwireUrl, player: view, message }));
  });

  // --- the buttons' backend: record the transaction, create the intent, answer its url -------------------------

  /** @param {'deposit' | 'withdrawal'} direction */
  const startPayment = (direction) => /** @type {express.RequestHandler} */ (async (req, res) => {
    const playerId = sessionPlayer(req);
    const player = playerId ? await playerView(pool, playerId) : null;
    if (!player) return void res.status(401).json({ error: 'no_session', message: 'Your session has ended. Reload the page.' });
    const amount = parseAmount(req.body?.amount);
    if (amount === null) return void res.status(400).json({ error: 'invalid_amount', message: 'Enter an amount in dollars, such as 50.00.' });
    if (direction === 'withdrawal' && !player.hasDeposited) {
      return void res.status(403).json({ error: 'deposit_required', message: 'Withdrawals open after your first deposit.' });
    }
    if (direction === 'withdrawal' && amount > player.balanceCents) {
      return void res.status(400).json({ error: 'insufficient_balance', message: `You can withdraw up to ${dollars(player.balanceCents)}.` });
    }
    try {
      const userId = await cashwireUser(player.id);
      // Our record first, committed: a webhook or the redirect can only ever find a transaction we already have.
      const transactionId = `${direction === 'deposit' ? 'dep' : 'wdr'}_${randomBytes(10).toString('hex')}`;
      await pool.query('INSERT INTO transactions (id, player_id, direction, amount_cents) VALUES ($1, $2, $3, $4)', [transactionId, player.id, direction, amount]);
      const intent = await cashwire.createIntent({
        direction: direction === 'deposit' ? 'cash_in' : 'cash_out',
        user_id: userId,
        amount,
        currency: 'USD',
        tag: transactionId,
        redirect_url: `${config.publicUrl}/return`,
        webhook_url: `${config.publicUrl}/webhooks/cashwire`,
        webhook_secret: config.webhookSecret,
      }, transactionId);
      await pool.query('UPDATE transactions SET intent_id = $2 WHERE id = $1', [transactionId, intent.id]);
      res.json({ url: intent.url });
    } catch (err) {
      if (!(err instanceof CashwireError)) throw err;
      console.warn('[merchant] could not start the payment:', err.message);
      res.status(502).json({ error: 'payments_unavailable', message: 'Payments are unavailable right now. Try again in a moment.' });
    }
  });
  app.post('/api/deposit', express.json(), startPayment('deposit'));
  app.post('/api/withdraw', express.json(), startPayment('withdrawal'));

  // --- webhooks: verified, each event id applied once, in the same transaction as its update ------------------------

  app.post('/webhooks/cashwire', express.raw({ type: 'application/json' }), expressHandler({
    format: 'pushcash',
    secrets: [config.webhookSecret],
    store: postgresStore(() => pool.connect(), { createTable: false }),
    async onEvent(received, tx) {
      // Only the intent.* events move a payment's status (refunds, disputes and user events are not handled here).
      if (received.version === null || !received.type.startsWith('intent.')) return;
      const event = /** @type {import('@cashwire/webhooks').IntentEvent} */ (received);
      const status = statusOf(event);
      const transactionId = tagOf(event);
      if (!status || !transactionId) return;
      const t = await applyStatus(tx, {
        transactionId, intentId: event.data.id, amountCents: amountInCents(event), status,
        declineCategory: 'decline_category' in event.data ? event.data.decline_category : null, source: 'webhook',
      });
      if (!t) console.warn('[merchant] webhook for a transaction we do not have:', transactionId, event.id);
    },
  }));

  app.use(/** @type {express.ErrorRequestHandler} */ ((err, _req, res, _next) => {
    const status = Number(err?.status) >= 400 && Number(err?.status) < 500 ? Number(err.status) : 500; // e.g. a JSON body that does not parse
    if (status === 500) console.error('[merchant]', err);
    res.status(status).type('text').send(status === 500 ? 'Something went wrong.' : 'Bad request.');
  }));
  return app;
}

/**
 * Migrates the database, then serves the cashier.
 * @param {MerchantConfig} config
 */
export async function startMerchant(config) {
  for (const name of /** @type {const} */ (['databaseUrl', 'cashwireUrl', 'cashwireApiKey', 'webhookSecret'])) {
    if (!config[name]) throw new Error(`merchant: ${name} is required`);
  }
  if (config.webhookSecret.length < 32 || config.webhookSecret.length > 4096) throw new Error('merchant: webhookSecret must be 32 to 4096 characters');
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10 });
  // An idle connection that PostgreSQL drops (a restart, a terminated backend) is an 'error' event of the pool; with
  // no listener it would be an uncaught exception and take the merchant down. The pool opens a new one when needed.
  pool.on('error', (err) => console.warn('[merchant] an idle database connection was lost:', err.message));
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port ?? 4100, config.host ?? '0.0.0.0', () => resolve(undefined));
  }).catch(async (err) => {
    await pool.end();
    throw err;
  });
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  const url = `http://${address.address === '0.0.0.0' || address.address === '::' ? 'localhost' : address.address}:${address.port}`;
  const publicUrl = (config.publicUrl ?? url).replace(/\/$/, '');
  server.on('request', createApp({ ...config, cashwireUrl: config.cashwireUrl.replace(/\/$/, ''), publicUrl }, pool));
  return {
    /** Where this process listens. */
    url,
    /** What it tells Cashwire and browsers. */
    publicUrl,
    pool,
    async stop() {
      await new Promise((resolve) => {
        server.close(() => resolve(undefined));
        server.closeAllConnections();
      });
      await pool.end();
    },
  };
}
