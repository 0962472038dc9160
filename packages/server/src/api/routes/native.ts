/**
 * Push Native routes: the widget URL and page, tokens, credentials, Apple Pay mobile.
 * With an API key: POST /user/{id}/url, POST /tokenize, the credential routes. With a nonce instead (a browser or a
 * phone calls them): GET /widget/, POST /widget/card, POST /widget/bank, GET /applepay/config, POST /applepay/token.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { logoOrigin } from '../../domain/branding.js';
import { DomainError } from '../../domain/errors.js';
import type { Deps } from '../../payments/context.js';
import {
  applePayConfig, applePayToken, createWidgetUrl, listCredentials, openNonce, saveCredential, tokenizeCard, widgetBank, widgetCard, WIDGET_TYPES,
} from '../../payments/native/native.js';
import { pageBranding } from '../../payments/operators/settings.js';
import { keyAuth } from '../auth.js';
import { Direction, errorsOf, IdParams, Nullable } from '../schemas.js';
import { widgetErrorPage, widgetPage } from './widget-page.js';

const Str = (max: number, extra: Record<string, unknown> = {}) => Type.String({ minLength: 1, maxLength: max, ...extra });
const WidgetType = Type.Union(WIDGET_TYPES.map((t) => Type.Literal(t)));
const CredentialType = Type.Union(['secure_debit', 'card_only_credit', 'card_only_debit', 'apple_pay_debit'].map((t) => Type.Literal(t)));

const UrlBody = Type.Object({
  direction: Direction,
  type: Type.Optional(WidgetType),
});
const CardFields = {
  pan: Str(32, { description: 'card number; spaces and dashes allowed. Sandbox: 5555 5555 5555 4444' }),
  cvv: Str(8),
  exp_month: Str(2, { description: '"1" to "12"' }),
  exp_year: Str(4, { description: '"28" or "2028"' }),
};
const TokenizeBody = Type.Object({ user_id: Str(64), ...CardFields });
const WidgetCardBody = Type.Object({ nonce: Str(200), ...CardFields });
const WidgetBankBody = Type.Object({ nonce: Str(200), username: Str(200), password: Str(200) });
const SaveCredentialBody = Type.Object({ token: Str(64), type: Type.Optional(Type.Literal('card_only')) });
const CredentialQuery = Type.Object({
  type: Type.Optional(Type.Union([CredentialType, Type.Array(CredentialType, { maxItems: 4 })], { description: 'repeat for several; none: all' })),
});
const WidgetQuery = Type.Object({
  client: Type.Optional(Type.String({ maxLength: 128 })),
  nonce: Type.Optional(Type.String({ maxLength: 200 })),
  mode: Type.Optional(Type.String({ maxLength: 32 })),
  type: Type.Optional(Type.String({ maxLength: 32 })),
});
const ApplePayConfigQuery = Type.Object({ nonce: Str(200), merchant_identifier: Str(255) });
const ApplePayTokenBody = Type.Object({
  nonce: Str(200),
  bin: Type.String({ pattern: '^[0-9]{6,8}$', description: 'the card BIN; the sandbox accepts any, e.g. "55555555"' }),
  bt_token_id: Str(255),
  bt_fingerprint: Str(255),
  display_name: Str(100, { description: 'as Apple Pay shows the card; must end in its last 4 digits, e.g. "Visa 4242"' }),
  network: Str(40),
  type: Str(40),
  amount: Type.Integer({ minimum: 1, maximum: 10_000_000_00 }),
  currency: Type.Literal('USD'),
  direction: Type.Literal('cash_in'),
  transaction_identifier: Type.Optional(Str(255, { description: 'when sent, a repeat returns the first token' })),
});

const UrlResponse = Type.Object({ url: Type.String({ description: 'the widget page; its `nonce` parameter identifies operator, environment and user' }) });
const TokenResponse = Type.Object({ token: Type.String() });
const ShortCredential = Type.Object({
  id: Type.String(), type: CredentialType, card_last4: Nullable(Type.String()), brand: Nullable(Type.String()),
  bank_name: Nullable(Type.String()), account_last4: Nullable(Type.String()),
});
const WidgetTokenResponse = Type.Object({ token: Type.String(), credential: ShortCredential });
export const Credential = Type.Object({
  id: Type.String(), created_at: Type.String(), type: CredentialType, display_name: Type.String(),
  card_last4: Nullable(Type.String()), brand: Nullable(Type.String()), expiration: Nullable(Type.String({ description: 'MM/YY' })),
  account_last4: Nullable(Type.String()), bank_name: Nullable(Type.String()), authenticated: Type.Boolean(),
}, { $id: 'Credential' });
const CredentialList = Type.Object({ data: Type.Array(Credential), next_cursor: Type.Null() });
const ApplePayConfig = Type.Object({
  merchant_capabilities: Type.Array(Type.String()), supported_networks: Type.Array(Type.String()), country_code: Type.String(),
  total_label: Type.String(), bt_application_key: Type.String(), bt_merchant_registration_id: Type.String(),
});
const ApplePayTokenResponse = Type.Object({ token_id: Type.String() });

/** Browsers and phones call these without a key, from any origin: CORS allows them (no credentials). */
const CORS = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST, OPTIONS', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '600' };

/** The widget page's CSP: its parents (frame-ancestors) and, when the operator's branding has a logo, the logo's https origin. */
function cspFor(origins: string[] | null, logoUrl: string | null = null): string {
  const ancestors = origins === null ? '*' : origins.length ? origins.join(' ') : "'none'";
  const logo = logoOrigin(logoUrl);
  return `default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:${logo ? ` ${logo}` : ''}; base-uri 'none'; form-action 'none'; frame-ancestors ${ancestors}`;
}

export const nativeRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  type P = { Params: Static<typeof IdParams> };

  app.post<P & { Body: Static<typeof UrlBody> }>('/user/:id/url', {
    schema: {
      params: IdParams, body: UrlBody, response: { 200: UrlResponse, ...errorsOf(400, 401, 404) },
      summary: "A widget URL for the user (30 minutes; spent by the first token it mints). Type: apple_pay, card_only or secure_debit; none: the user picks card or bank",
    },
    onRequest: auth('create'),
  }, async (req) => createWidgetUrl(deps, req.caller, req.params.id, req.body));

  app.post<{ Body: Static<typeof TokenizeBody> }>('/tokenize', {
    schema: {
      body: TokenizeBody, response: { 200: TokenResponse, ...errorsOf(400, 401, 404) },
      summary: 'Tokenize a card (PCI-scoped backends): a token for one authorization, 15 minutes. PAN and CVV are not stored',
    },
    onRequest: auth('create'),
  }, async (req) => tokenizeCard(deps, req.caller, req.body));

  const list = async (req: FastifyRequest<P & { Querystring: Static<typeof CredentialQuery> }>) => {
    const t = req.query.type;
    return listCredentials(deps, req.caller, req.params.id, t === undefined ? undefined : Array.isArray(t) ? t : [t]);
  };
  app.get<P & { Querystring: Static<typeof CredentialQuery> }>('/user/:id/credential/list', {
    schema: { params: IdParams, querystring: CredentialQuery, response: { 200: CredentialList, ...errorsOf(400, 401, 404) }, summary: "The user's credentials, of the types asked for" },
    onRequest: auth('read'),
  }, list);
  app.get<P & { Querystring: Static<typeof CredentialQuery> }>('/user/:id/credentials', {
    schema: { params: IdParams, querystring: CredentialQuery, response: { 200: CredentialList, ...errorsOf(400, 401, 404) }, summary: "The user's credentials (the older path)" },
    onRequest: auth('read'),
  }, list);
  app.post<P & { Body: Static<typeof SaveCredentialBody> }>('/user/:id/credential', {
    schema: { params: IdParams, body: SaveCredentialBody, response: { 200: Credential, ...errorsOf(400, 401, 404) }, summary: "Store a token's card or account as a credential of the user" },
    onRequest: auth('create'),
  }, async (req) => saveCredential(deps, req.caller, req.params.id, req.body.token));

  // ---- With a nonce, no key -----------------------------------------------------------------------------------

  const page = async (req: FastifyRequest<{ Querystring: Static<typeof WidgetQuery> }>, reply: FastifyReply) => {
    void reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer')
      .header('X-Content-Type-Options', 'nosniff');
    try {
      const n = await openNonce(deps, deps.db, req.query.nonce ?? '', { client: req.query.client });
      const sandbox = n.environment === 'sandbox';
      const origins = n.operator_settings.allowed_origins ?? (sandbox ? null : []);
      const brand = pageBranding(n.operator_settings, n.operator_name);
      return reply.header('Content-Security-Policy', cspFor(origins, brand.logo_url)).send(widgetPage({
        nonce: n.id, type: n.type, direction: n.direction, sandbox, operatorName: n.operator_name, allowedOrigins: origins,
        branding: { displayName: brand.display_name, logoUrl: brand.logo_url, accentColor: brand.accent_color },
      }));
    } catch (err) {
      if (err instanceof DomainError && err.code === 'nonce_invalid') {
        return reply.status(403).header('Content-Security-Policy', cspFor(null))
          .send(widgetErrorPage('This payment form has expired', 'Close it and start again from the site you came from.'));
      }
      throw err;
    }
  };
  for (const path of ['/widget/', '/widget']) {
    app.get<{ Querystring: Static<typeof WidgetQuery> }>(path, {
      schema: { querystring: WidgetQuery, security: [], summary: 'The widget page (HTML, made for an iframe); 403 HTML page for a bad, expired or spent nonce', hide: path === '/widget' },
    }, page);
  }

  app.post<{ Body: Static<typeof WidgetCardBody> }>('/widget/card', {
    schema: { body: WidgetCardBody, security: [], response: { 200: WidgetTokenResponse, ...errorsOf(400, 403) }, summary: "The widget page's card form: a token (spends the nonce)" },
  }, async (req) => widgetCard(deps, req.body));

  app.post<{ Body: Static<typeof WidgetBankBody> }>('/widget/bank', {
    schema: { body: WidgetBankBody, security: [], response: { 200: WidgetTokenResponse, ...errorsOf(400, 403) }, summary: "The widget page's bank sign-in (sandbox: mxuser / password): links a secure_debit account, a token (spends the nonce)" },
  }, async (req) => widgetBank(deps, req.body));

  await app.register(async (cors) => {
    cors.addHook('onSend', async (_req, reply, payload) => {
      void reply.headers(CORS);
      return payload;
    });
    cors.get<{ Querystring: Static<typeof ApplePayConfigQuery> }>('/applepay/config', {
      schema: {
        querystring: ApplePayConfigQuery, security: [], response: { 200: ApplePayConfig, ...errorsOf(400, 403) },
        summary: "Apple Pay mobile: the sheet's configuration. 403 \"…not enabled…\" for a merchant identifier not in apple_pay.merchant_identifiers; 403 for a bad, expired or spent nonce",
      },
    }, async (req) => applePayConfig(deps, req.query.nonce, req.query.merchant_identifier));
    cors.post<{ Body: Static<typeof ApplePayTokenBody> }>('/applepay/token', {
      schema: { body: ApplePayTokenBody, security: [], response: { 200: ApplePayTokenResponse, ...errorsOf(400, 403) }, summary: 'Apple Pay mobile: mint a token (apple_pay_debit credential) with the nonce' },
    }, async (req) => applePayToken(deps, req.body));
    for (const path of ['/applepay/config', '/applepay/token']) {
      cors.options(path, { schema: { hide: true } }, async (_req, reply) => reply.status(204).send());
    }
  });
};
