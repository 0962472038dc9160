import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import {
  createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, recoverEndpoint, revealSecret, rotateSecret, setEnabled, updateEndpoint,
} from '../../delivery/endpoints.js';
import { sendTestEvent } from '../../delivery/test-event.js';
import { getSettings, patchSettings } from '../../payments/operators/settings.js';
import { authenticate, forgetOperatorKeys } from '../auth.js';
import { IdParams } from '../schemas.js';

const Format = Type.Union([Type.Literal('pushcash'), Type.Literal('sendcash'), Type.Literal('standard')]);
const PayloadVersion = Type.Union([Type.Literal('2024-05'), Type.Literal('2023-01')]);
const Ordering = Type.Union([Type.Literal('unordered'), Type.Literal('fifo')], {
  description: 'fifo: one delivery in flight, in event order; a failing delivery holds back the ones after it (default unordered)',
});
const EndpointFields = {
  url: Type.String({ minLength: 1, maxLength: 2048 }),
  events: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 50, description: 'event types, or "*" for all' }),
  format: Type.Optional(Format),
  payload_version: Type.Optional(PayloadVersion),
  description: Type.Optional(Type.String({ maxLength: 500 })),
  max_concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'attempts in flight at once, across all worker processes' })),
  rate_limit_per_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'attempts started per second, across all worker processes' })),
  ordering: Type.Optional(Ordering),
};
const CreateEndpointBody = Type.Object(EndpointFields);
const UpdateEndpointBody = Type.Object({
  url: Type.Optional(EndpointFields.url),
  events: Type.Optional(EndpointFields.events),
  format: Type.Optional(Format),
  payload_version: Type.Optional(PayloadVersion),
  description: Type.Optional(Type.String({ maxLength: 500 })),
  max_concurrency: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1000 }), Type.Null()])),
  rate_limit_per_s: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 100_000 }), Type.Null()])),
  ordering: Type.Optional(Ordering),
});
const RotateBody = Type.Object({ grace_period_s: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400, description: 'default 86400' })) });
const RecoverBody = Type.Object({ since: Type.String({ minLength: 1, maxLength: 40 }), until: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })) });
const TestEventBody = Type.Object({ type: Type.String({ minLength: 1, maxLength: 64, description: 'a catalog event type (or Payment.Status); the endpoint need not subscribe to it' }) });

const Schedule = Type.Object({
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  firstDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
  factor: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
  maxDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400_000 })),
  maxAgeMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400_000 })),
  jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
});
export const SettingsBody = Type.Object({
  payload_version: Type.Optional(PayloadVersion),
  retry_schedules: Type.Optional(Type.Object({ sandbox: Type.Optional(Schedule), production: Type.Optional(Schedule), sendcash: Type.Optional(Schedule) })),
  rate_limits: Type.Optional(Type.Object({
    create: Type.Optional(Type.Integer({ minimum: 1 })), read: Type.Optional(Type.Integer({ minimum: 1 })),
    cli: Type.Optional(Type.Integer({ minimum: 1, description: 'requests of the CLI (X-Cashwire-Client: cli) per key per sliding hour, a budget of their own; default 1000' })),
    dashboard: Type.Optional(Type.Integer({ minimum: 1, description: 'requests of dashboard sessions (/dashboard) per key per sliding hour, a budget of their own; default 5000' })),
  })),
  limits: Type.Optional(Type.Object({
    daily_cash_in: Type.Optional(Type.Integer({ minimum: 0 })), daily_cash_out: Type.Optional(Type.Integer({ minimum: 0 })),
    monthly_cash_in: Type.Optional(Type.Integer({ minimum: 0 })), monthly_cash_out: Type.Optional(Type.Integer({ minimum: 0 })),
  })),
  allowed_origins: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
    maxItems: 50, description: 'Origins whose pages may embed the Widget, e.g. "https://casino.example". Unset: any origin in the sandbox, none in production; [] allows none.',
  })),
  apple_pay: Type.Optional(Type.Object({
    merchant_identifiers: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 50, description: 'Apple merchant identifiers with a registered payment-processing certificate' })),
    total_label: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "the Apple Pay sheet's label; default the operator's name" })),
    bt_application_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    bt_merchant_registration_id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  })),
  branding: Type.Optional(Type.Object({
    display_name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], { description: "shown on the hosted pages instead of the operator's name; null: the operator's name" })),
    logo_url: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 2048 }), Type.Null()], { description: 'an https image URL, shown at the top of the hosted pages; null: none' })),
    accent_color: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 16 }), Type.Null()], { description: '#rrggbb: the primary button and accents; null: the default colours' })),
    return_url: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 2048 }), Type.Null()], { description: 'http(s): where "Back to <display name>" goes when a payment has no redirect_url; null: none' })),
  }, { description: 'The hosted pages (payment page, step-up, Widget, Sendcash payer page). Changes merge; null removes a value.' })),
});

export const endpointRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const create = async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, 'create');
  const read = async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, 'read');
  type P = { Params: Static<typeof IdParams> };

  app.post<{ Body: Static<typeof CreateEndpointBody> }>('/webhook/endpoints', {
    schema: { body: CreateEndpointBody, summary: 'Register a webhook endpoint; the answer shows its secret once' }, onRequest: create,
  }, async (req, reply) => reply.status(201).send(await createEndpoint(deps, req.caller, req.body)));
  app.get('/webhook/endpoints', { schema: { summary: 'List webhook endpoints' }, onRequest: read }, async (req) => listEndpoints(deps, req.caller));
  app.get<P>('/webhook/endpoints/:id', { schema: { params: IdParams, summary: 'Get a webhook endpoint and its health' }, onRequest: read },
    async (req) => getEndpoint(deps, req.caller, req.params.id));
  app.patch<P & { Body: Static<typeof UpdateEndpointBody> }>('/webhook/endpoints/:id', {
    schema: { params: IdParams, body: UpdateEndpointBody, summary: 'Change a webhook endpoint' }, onRequest: read,
  }, async (req) => updateEndpoint(deps, req.caller, req.params.id, req.body));
  app.delete<P>('/webhook/endpoints/:id', { schema: { params: IdParams, summary: 'Delete a webhook endpoint' }, onRequest: read },
    async (req) => deleteEndpoint(deps, req.caller, req.params.id));
  app.post<P>('/webhook/endpoints/:id/disable', { schema: { params: IdParams, summary: 'Disable: deliveries are held, not lost' }, onRequest: read },
    async (req) => setEnabled(deps, req.caller, req.params.id, false));
  app.post<P>('/webhook/endpoints/:id/enable', { schema: { params: IdParams, summary: 'Enable: held deliveries are sent' }, onRequest: read },
    async (req) => setEnabled(deps, req.caller, req.params.id, true));
  app.post<P & { Body: Static<typeof RotateBody> }>('/webhook/endpoints/:id/rotate', {
    schema: { params: IdParams, body: RotateBody, summary: 'Rotate the secret; the old one stays valid for the grace period' }, onRequest: read,
  }, async (req) => rotateSecret(deps, req.caller, req.params.id, req.body.grace_period_s));
  app.get<P>('/webhook/endpoints/:id/secret', { schema: { params: IdParams, summary: 'Reveal the secret (and the previous one during a rotation)' }, onRequest: read },
    async (req) => revealSecret(deps, req.caller, req.params.id));
  app.post<P & { Body: Static<typeof RecoverBody> }>('/webhook/endpoints/:id/recover', {
    schema: { params: IdParams, body: RecoverBody, summary: 'Resend what failed or expired for this endpoint in [since, until)' }, onRequest: read,
  }, async (req) => recoverEndpoint(deps, req.caller, req.params.id, req.body));
  app.post<P & { Body: Static<typeof TestEventBody> }>('/webhook/endpoints/:id/test', {
    schema: { params: IdParams, body: TestEventBody, summary: 'Send a test event of a type, with example data, to this endpoint only' }, onRequest: read,
  }, async (req) => sendTestEvent(deps, req.caller, req.params.id, req.body.type));

  app.get('/operator/settings', { schema: { summary: "The operator's settings, with the defaults in force" }, onRequest: read }, async (req) => getSettings(deps, req.caller));
  app.patch<{ Body: Static<typeof SettingsBody> }>('/operator/settings', {
    schema: { body: SettingsBody, summary: 'Change the default payload version, retry schedules, rate limits, user limits, Widget origins, Apple Pay or the hosted pages\' branding' }, onRequest: read,
  }, async (req) => {
    const settings = await patchSettings(deps, req.caller, req.body);
    forgetOperatorKeys(deps, req.caller.operatorId); // the next request of any of its keys reads the new settings
    return settings;
  });
};
