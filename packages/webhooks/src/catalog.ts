/**
 * The event catalog: every event type Cashwire emits and the shape of its `data`.
 * The server stores one canonical record per event (`EventRecord`); the payload a receiver sees is
 * rendered from it for the payload version the receiver asked for (see render.ts).
 */

export const INTENT_EVENT_TYPES = ['intent.approved', 'intent.declined', 'intent.canceled', 'intent.settled'] as const;
/** Refunds and disputes of an intent: sent to registered endpoints subscribed to them. */
export const REFUND_EVENT_TYPES = ['refund.approved', 'refund.declined'] as const;
export const DISPUTE_EVENT_TYPES = ['dispute.created', 'dispute.won', 'dispute.lost'] as const;
/** A user's limit requests and their decisions (Push Cash's names). */
export const USER_EVENT_TYPES = ['user.limits_request', 'user.limits_request.updated', 'user.limits_request.partial_approval', 'user.limits_request.declined'] as const;
/** Operational events: about the delivery system itself, sent only to registered endpoints subscribed to them. */
export const OPERATIONAL_EVENT_TYPES = ['delivery.exhausted', 'endpoint.disabled', 'endpoint.recovered'] as const;
export const EVENT_TYPES = [...INTENT_EVENT_TYPES, ...REFUND_EVENT_TYPES, ...DISPUTE_EVENT_TYPES, ...USER_EVENT_TYPES, ...OPERATIONAL_EVENT_TYPES] as const;
export type IntentEventType = (typeof INTENT_EVENT_TYPES)[number];
export type RefundEventType = (typeof REFUND_EVENT_TYPES)[number];
export type DisputeEventType = (typeof DISPUTE_EVENT_TYPES)[number];
export type UserEventType = (typeof USER_EVENT_TYPES)[number];
export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];
export type EventType = (typeof EVENT_TYPES)[number];

export const PAYLOAD_VERSIONS = ['2024-05', '2023-01'] as const;
/** `2024-05`: integer cents, `tag`, `rail`, `type` (seed 003, the default). `2023-01`: float dollars and `idempotency_key` (seed 002). */
export type PayloadVersion = (typeof PAYLOAD_VERSIONS)[number];
export const DEFAULT_PAYLOAD_VERSION: PayloadVersion = '2024-05';

export type Direction = 'cash_in' | 'cash_out';
export type IntentStatus = 'created' | 'pending' | 'approved' | 'declined' | 'canceled';

/** Limit usage in cents, as numbers; rendered as two-decimal strings in the payload's unit. */
export interface LimitsUtilizationCents {
  daily_cash_in: number;
  daily_cash_out: number;
  monthly_cash_in: number;
  monthly_cash_out: number;
}

export interface TransactionRecord {
  id: string;
  amount: number; // cents
  currency: string;
  status: 'settled';
  date: string; // YYYY-MM-DD
  account_id: string | null;
  created_at: string;
}

/** The canonical, version-independent data of an intent event, as the server stores it. */
export interface IntentEventRecord {
  id: string;
  tag: string | null;
  idempotency_key: string | null;
  direction: Direction;
  amount: number; // cents
  currency: string;
  status: IntentStatus;
  rail: 'ach' | 'card';
  type: string;
  decline_category?: string | null;
  limits_utilization?: LimitsUtilizationCents | null;
  transaction?: TransactionRecord | null;
}

/**
 * `delivery.exhausted`: a delivery ended without success: `expired` (its schedule ran out), `failed` (its endpoint
 * was deleted) or `dead` (dead-lettered: see the README). Sent for every event but the operational ones.
 */
export interface DeliveryExhaustedData {
  delivery_id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string | null;
  url: string;
  status: 'failed' | 'expired' | 'dead';
  attempts: number;
  last_status: number | null;
  last_error: string | null;
}

/** `endpoint.disabled` and `endpoint.recovered`. */
export interface EndpointHealthData {
  endpoint_id: string;
  url: string;
  /** disabled: `gone` (a 410), `failing` (failed continuously for the configured time) or `operator`. */
  reason?: string;
  at: string;
}

export type OperationalData = DeliveryExhaustedData | EndpointHealthData;

/** The canonical data of a refund event; `tag` and `idempotency_key` are the refunded intent's. */
/** What a refund's and a dispute's records share: the object, its intent and the intent's tag, cents. */
interface IntentObjectRecord {
  id: string;
  intent_id: string;
  tag: string | null;
  idempotency_key: string | null;
  amount: number; // cents
  currency: string;
  created_at: string;
}

export interface RefundEventRecord extends IntentObjectRecord {
  status: 'approved' | 'declined';
}

/** The canonical data of a dispute event; a lost dispute carries the transaction that debited it. */
export interface DisputeEventRecord extends IntentObjectRecord {
  code: string;
  status: 'created' | 'won' | 'lost';
  /** `push` (a bank payment) or `card_only`. */
  type: string;
  transaction?: { id: string; amount: number; currency: string; status: string; date: string; account_id: string | null; created_at: string } | null;
}

/** The canonical data of a user event (limit requests); `approved_daily_limit` in cents. */
export interface UserEventRecord {
  user_id: string;
  approved_daily_limit?: number;
  currency?: string;
  timestamp: string;
}

export type EventRecord =
  | { id: string; type: IntentEventType; data: IntentEventRecord }
  | { id: string; type: RefundEventType; data: RefundEventRecord }
  | { id: string; type: DisputeEventType; data: DisputeEventRecord }
  | { id: string; type: UserEventType; data: UserEventRecord }
  | { id: string; type: OperationalEventType; data: OperationalData };

const REFUND_FIELDS = ['id', 'intent_id', 'tag', 'amount', 'currency', 'status', 'created_at'];
const DISPUTE_FIELDS = ['id', 'intent_id', 'tag', 'amount', 'currency', 'code', 'status', 'type', 'created_at'];

/** What each type means and which fields its `data` carries. */
export const CATALOG: Record<EventType, { description: string; fields: string[] }> = {
  'intent.approved': {
    description: 'An intent was approved (status `approved`), or accepted for manual review (status `pending`).',
    fields: ['id', 'tag', 'direction', 'amount', 'status', 'rail', 'currency', 'type', 'limits_utilization'],
  },
  'intent.declined': {
    description: 'An intent was declined; `decline_category` says why.',
    fields: ['id', 'tag', 'direction', 'amount', 'status', 'decline_category', 'currency', 'type'],
  },
  'intent.canceled': {
    description: 'An intent was canceled before approval, by the operator or by the user on the payment page.',
    fields: ['id', 'tag', 'direction', 'amount', 'status', 'currency', 'type'],
  },
  'intent.settled': {
    description: 'An approved intent settled: money moved; `transaction` is the settled transaction.',
    fields: ['id', 'tag', 'direction', 'amount', 'status', 'rail', 'currency', 'type', 'transaction'],
  },
  'refund.approved': {
    description: 'A refund of a deposit was approved: `amount` goes back to the payer.',
    fields: REFUND_FIELDS,
  },
  'refund.declined': {
    description: 'A refund was declined by the card network or bank; nothing moved.',
    fields: REFUND_FIELDS,
  },
  'dispute.created': {
    description: 'The payer disputed an intent (`code`: the network reason code); it waits for its resolution.',
    fields: DISPUTE_FIELDS,
  },
  'dispute.won': {
    description: 'A dispute was resolved for the operator: nothing moves.',
    fields: DISPUTE_FIELDS,
  },
  'dispute.lost': {
    description: 'A dispute was resolved for the payer: `transaction` debits the disputed amount.',
    fields: [...DISPUTE_FIELDS, 'transaction'],
  },
  'user.limits_request': {
    description: 'A user asked for a higher limit: answer with PATCH /user/{id}.',
    fields: ['user_id', 'timestamp'],
  },
  'user.limits_request.updated': {
    description: "A limit request was approved: `approved_daily_limit` is the user's new daily limit.",
    fields: ['user_id', 'approved_daily_limit', 'currency', 'timestamp'],
  },
  'user.limits_request.partial_approval': {
    description: 'A limit request was approved in part: `approved_daily_limit` is less than asked.',
    fields: ['user_id', 'approved_daily_limit', 'currency', 'timestamp'],
  },
  'user.limits_request.declined': {
    description: 'A limit request was declined; the limit is unchanged.',
    fields: ['user_id', 'currency', 'timestamp'],
  },
  'delivery.exhausted': {
    description: 'A delivery of a payment event ended without success: retries expired, or the receiver answered 410 or 413.',
    fields: ['delivery_id', 'event_id', 'event_type', 'endpoint_id', 'url', 'status', 'attempts', 'last_status', 'last_error'],
  },
  'endpoint.disabled': {
    description: 'A registered endpoint was disabled: by the operator, on a 410, or after failing continuously.',
    fields: ['endpoint_id', 'url', 'reason', 'at'],
  },
  'endpoint.recovered': {
    description: 'A failing registered endpoint answered 2xx again (its circuit closed).',
    fields: ['endpoint_id', 'url', 'at'],
  },
};

export function isIntentEvent(e: EventRecord): e is Extract<EventRecord, { type: IntentEventType }> {
  return (INTENT_EVENT_TYPES as readonly string[]).includes(e.type);
}

/** Refund and dispute events: about an intent, amounts in the payload's unit. */
export function isMoneyEvent(e: EventRecord): e is Extract<EventRecord, { type: RefundEventType | DisputeEventType }> {
  return (REFUND_EVENT_TYPES as readonly string[]).includes(e.type) || (DISPUTE_EVENT_TYPES as readonly string[]).includes(e.type);
}

export function isUserEvent(e: EventRecord): e is Extract<EventRecord, { type: UserEventType }> {
  return (USER_EVENT_TYPES as readonly string[]).includes(e.type);
}

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

// --- What a receiver sees on the wire -------------------------------------------------------------------------

/** `limits_utilization.*`: two-decimal strings in the payload's unit ("5000.00" cents in 2024-05, "50.00" dollars in 2023-01). */
export interface LimitsUtilization {
  daily_cash_in: string;
  daily_cash_out: string;
  monthly_cash_in: string;
  monthly_cash_out: string;
}

/** `intent.settled`'s `transaction`; `amount` is in the payload's unit. */
export interface SettledTransaction {
  id: string;
  amount: number;
  currency: string;
  status: 'settled';
  date: string;
  account_id: string | null;
}

interface IntentDataBase {
  id: string;
  direction: Direction;
  status: IntentStatus;
  currency: string;
}

/** `2024-05` (seed 003): `amount` in integer cents, `tag`, `rail`, `type`. */
export interface IntentData2024 extends IntentDataBase {
  tag: string | null;
  amount: number;
  rail?: 'ach' | 'card';
  type: string;
}

/** `2023-01` (seed 002): `amount` in float dollars, `idempotency_key`. */
export interface IntentData2023 extends IntentDataBase {
  idempotency_key: string | null;
  amount: number;
}

interface IntentExtras {
  'intent.approved': { limits_utilization?: LimitsUtilization };
  'intent.declined': { decline_category: string | null };
  'intent.canceled': Record<never, never>;
  'intent.settled': { transaction?: SettledTransaction };
}

/** The `data` of an intent event of type `T` in payload version `V`. */
export type IntentData<T extends IntentEventType, V extends PayloadVersion> = (V extends '2024-05' ? IntentData2024 : IntentData2023) &
  IntentExtras[T];

/** A refund or dispute event's `data` on the wire: `2024-05` has `tag` and cents, `2023-01` `idempotency_key` and dollars. */
export interface RefundData {
  id: string;
  intent_id: string;
  tag?: string | null;
  idempotency_key?: string | null;
  amount: number;
  currency: string;
  status: 'approved' | 'declined';
  created_at: string;
}

export interface DisputeData extends Omit<RefundData, 'status'> {
  code: string;
  status: 'created' | 'won' | 'lost';
  type: string;
  transaction?: SettledTransaction | { id: string; amount: number; currency: string; status: string; date: string; account_id: string | null };
}

/** A user event's `data`: `approved_daily_limit` as a string, integer cents in `2024-05` ("150000"), dollars in `2023-01` ("1500.00"). */
export interface UserLimitsData {
  user_id: string;
  approved_daily_limit?: string;
  currency?: string;
  timestamp: string;
}

// --- Sendcash Pay (seed 004): a parse target only; Cashwire never emits it --------------------------------------

/** Kept out of EVENT_TYPES: the server iterates that list for subscriptions, and it never emits these. */
export const SENDCASH_EVENT_TYPES = ['Payment.Status'] as const;
export type SendcashEventType = (typeof SENDCASH_EVENT_TYPES)[number];

/** Body `{event: "Payment.Status", data}`: `event` where the catalog has `type`, and no `timestamp`. */
export interface PaymentStatusData {
  status: 'Completed' | 'Failed';
  userId: string;
  /** The merchant's transaction reference: the natural de-duplication key (there is no event id). */
  paymentReference: string;
  /** Decimal naira, e.g. 100.23. */
  amount: number;
  description: string;
  /** Compare with the user's verified name before giving value: see `checkSenderName`. */
  senderAccountName: string;
  sourceAccountNumber: string;
  /** `business` accounts may skip the name check. */
  sourceAccountType: string;
  sourceBankCode: string;
  destinationAccountNumber: string;
  destinationBankCode: string;
}

export const SENDCASH_CATALOG: Record<SendcashEventType, { description: string; fields: string[] }> = {
  'Payment.Status': {
    description: 'A Sendcash Pay transfer completed or failed (`status`).',
    fields: ['status', 'userId', 'paymentReference', 'amount', 'description', 'senderAccountName', 'sourceAccountNumber', 'sourceAccountType',
      'sourceBankCode', 'destinationAccountNumber', 'destinationBankCode'],
  },
};
