import { Type, type TSchema } from 'typebox';

const Str = (max: number, extra: Record<string, unknown> = {}) => Type.String({ minLength: 1, maxLength: max, ...extra });

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable code' }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'the offending field, where there is one' })),
    }),
  },
  { $id: 'Error' },
);

export const Direction = Type.Union([Type.Literal('cash_in'), Type.Literal('cash_out')]);
export const ApprovalMode = Type.Union([Type.Literal('automatic'), Type.Literal('manual')]);

export const CreateUserBody = Type.Object({
  name: Type.Object({ first: Str(100), last: Str(100) }),
  email: Str(254),
  phone_number: Type.Optional(Str(20)),
  address: Type.Object({
    address_line_1: Str(200),
    address_line_2: Type.Optional(Type.String({ maxLength: 200 })),
    locality: Str(100),
    administrative_area: Type.String({ minLength: 2, maxLength: 2 }),
    postal_code: Str(10),
    country: Type.String({ minLength: 2, maxLength: 2 }),
  }),
  date_of_birth: Type.String({ minLength: 10, maxLength: 10 }),
  government_id: Type.Object({
    type: Type.Union(['drivers_license', 'passport', 'state_id', 'military_id', 'ssn'].map((t) => Type.Literal(t))),
    last4: Type.String({ minLength: 4, maxLength: 4 }),
    state: Type.Optional(Type.String({ minLength: 2, maxLength: 2 })),
  }),
  identity_verified: Type.Boolean(),
  tag: Type.Optional(Str(255)),
});

const Amount = Type.Integer({ minimum: 1, maximum: 10_000_000_00, description: 'integer cents' });
const Currency = Type.Literal('USD');
const Url = Str(2048, { description: 'http(s) URL' });
const WebhookSecret = Type.String({ minLength: 32, maxLength: 4096 });
const Tag = Type.String({ maxLength: 255 });

export const CreateIntentBody = Type.Object({
  direction: Direction,
  user_id: Str(64),
  amount: Amount,
  currency: Currency,
  redirect_url: Type.Optional(Url),
  webhook_url: Type.Optional(Url),
  webhook_secret: Type.Optional(WebhookSecret),
  tag: Type.Optional(Tag),
  approval_mode: Type.Optional(ApprovalMode),
  account_id: Type.Optional(Str(64)),
  display_limits: Type.Optional(Type.Boolean()),
  display_loyalty: Type.Optional(Type.Boolean()),
});

export const AuthorizeBody = Type.Object({
  amount: Amount,
  currency: Currency,
  direction: Direction,
  token: Type.Optional(Str(64)),
  credential_id: Type.Optional(Str(64)),
  redirect_url: Type.Optional(Url),
  webhook_url: Type.Optional(Url),
  webhook_secret: Type.Optional(WebhookSecret),
  tag: Type.Optional(Tag),
  account_id: Type.Optional(Str(64)),
  approval_mode: Type.Optional(ApprovalMode),
});

/** POST /authorize when authentication is required: the intent (still `created`) and its step-up page. */
export const StepUpResponse = Type.Object({
  id: Type.String({ description: 'the intent' }),
  url: Type.String({ description: 'the step-up page: show it in an iframe (it posts {source: "cashwire", intent_id, status} to the parent) or open it' }),
});

export const TokenBody = Type.Object({
  user_id: Str(64),
  type: Type.Union([Type.Literal('card_only'), Type.Literal('secure_debit'), Type.Literal('apple_pay')]),
});

export const IdParams = Type.Object({ id: Str(128) });

export const ListQuery = Type.Object({
  cursor: Type.Optional(Str(512)),
  limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100, default 25' })),
  'created_at.after': Type.Optional(Type.String({ maxLength: 40 })),
  'created_at.before': Type.Optional(Type.String({ maxLength: 40 })),
});

export const EventsQuery = Type.Object({
  ...ListQuery.properties,
  type: Type.Optional(Str(64)),
  intent_id: Type.Optional(Str(128)),
  delivery_status: Type.Optional(Type.Union(['pending', 'succeeded', 'failed', 'expired', 'dead'].map((v) => Type.Literal(v)))),
});

export const IdempotencyHeaders = Type.Object({
  'x-idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
});

/** `T` or null, in a response schema. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** The error shape as the response schema of these statuses. */
export const errorsOf = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBody]));
