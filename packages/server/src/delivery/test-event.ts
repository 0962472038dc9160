/**
 * A test event (POST /webhook/endpoints/{id}/test, and the dashboard's "Send a test event"): Svix's "send example" and
 * Stripe's test webhooks, for one endpoint. It is a real event row of the chosen catalog type, so it shows in the
 * dashboard's events list and its delivery and attempts on the event page like any other, with example data in the
 * type's own shape (what a receiver's parser already accepts: no extra `test` field, which the payload formats have no
 * room for, and which renderPayload would drop anyway). What marks it as a test to its receiver is its data: every id
 * in it says so (`int_test_…`, `refund_test_…`, `user_test_…`, a Payment.Status `paymentReference` of `test_…`) and the
 * intent's `tag` is `cashwire_test_event`. The event id itself is an ordinary `evt_…`, so de-duplication by event id
 * works as usual.
 *
 * It goes to that endpoint only: no fan-out to the operator's other endpoints, no intent `webhook_url`, and its row is
 * marked `test` (migration 022), so that GET /events, the feed and the stream (payments/events/) leave it out: an
 * integration pulling them would otherwise take a fake approved deposit for a real one. The dashboard's events list and
 * GET /events/{id} (by its id, which only its sender knows) still show it. It is signed in the endpoint's format and
 * payload version with its current secret, like every delivery (the one insert, enqueueSql).
 * An endpoint not subscribed to the type gets it all the same: the operator asked for that type explicitly, and a
 * receiver that answers it with a 4xx is worth knowing about before a real one arrives; the answer says
 * `subscribed: false`. A disabled endpoint's test delivery is held until it is enabled (`held: true`), as any delivery.
 */
import type { Format } from '@cashwire/webhooks';
import { withTx } from '../db/pool.js';
import { errors } from '../domain/errors.js';
import type { Caller, Deps } from '../payments/context.js';
import { currentTraceparent } from '../telemetry.js';
import { loadEndpoint, SUBSCRIBABLE } from './endpoints.js';
import { enqueueSql, wakeAfterCommit } from './queue.js';

/** The types a test event can have: every type an endpoint can subscribe to. */
export const TEST_EVENT_TYPES: readonly string[] = SUBSCRIBABLE;

/** The intent's tag (and `idempotency_key`, for the 2023-01 payloads) of every test intent event. */
export const TEST_TAG = 'cashwire_test_event';

/**
 * Example `data` for `type`, as the server stores it (cents; rendered per payload version at send time). `id(prefix)`
 * makes fresh ids, so that a receiver keyed on the object id sees each test as new.
 */
export function exampleData(type: string, id: (prefix: string) => string, now: Date, endpoint: { id: string; url: string }): object {
  const at = now.toISOString();
  const intentId = id('int_test_');
  const intent = (status: string, extra: object = {}) => ({
    id: intentId, tag: TEST_TAG, idempotency_key: TEST_TAG, direction: 'cash_in', amount: 2500, currency: 'USD', status, rail: 'card', type: 'card_only', ...extra,
  });
  const money = { intent_id: intentId, tag: TEST_TAG, idempotency_key: TEST_TAG, amount: 2500, currency: 'USD', created_at: at };
  const transaction = { id: id('txn_test_'), amount: 2500, currency: 'USD', status: 'settled', date: at.slice(0, 10), account_id: null, created_at: at };
  const userId = id('user_test_');
  switch (type) {
    case 'intent.approved':
      return intent('approved', { limits_utilization: { daily_cash_in: 2500, daily_cash_out: 0, monthly_cash_in: 2500, monthly_cash_out: 0 } });
    case 'intent.declined': return intent('declined', { decline_category: 'insufficient_funds' });
    case 'intent.canceled': return intent('canceled');
    case 'intent.settled': return intent('approved', { transaction });
    case 'refund.approved': return { id: id('refund_test_'), ...money, status: 'approved' };
    case 'refund.declined': return { id: id('refund_test_'), ...money, status: 'declined' };
    case 'dispute.created': return { id: id('dispute_test_'), ...money, code: '10.4', status: 'created', type: 'card_only' };
    case 'dispute.won': return { id: id('dispute_test_'), ...money, code: '10.4', status: 'won', type: 'card_only' };
    case 'dispute.lost': return { id: id('dispute_test_'), ...money, code: '10.4', status: 'lost', type: 'card_only', transaction: { ...transaction, amount: -2500 } };
    case 'user.limits_request': return { user_id: userId, timestamp: at };
    case 'user.limits_request.updated': return { user_id: userId, approved_daily_limit: 500_000, currency: 'USD', timestamp: at };
    case 'user.limits_request.partial_approval': return { user_id: userId, approved_daily_limit: 300_000, currency: 'USD', timestamp: at };
    case 'user.limits_request.declined': return { user_id: userId, currency: 'USD', timestamp: at };
    case 'delivery.exhausted':
      return { delivery_id: id('dlv_test_'), event_id: id('evt_test_'), event_type: 'intent.approved', endpoint_id: endpoint.id, url: endpoint.url, status: 'expired', attempts: 12, last_status: 500, last_error: null };
    // The endpoint's own id and URL would read as a real alarm about it: a test id, the real URL for context.
    case 'endpoint.disabled': return { endpoint_id: id('ep_test_'), url: endpoint.url, reason: 'failing', at };
    case 'endpoint.recovered': return { endpoint_id: id('ep_test_'), url: endpoint.url, at };
    case 'Payment.Status':
      return {
        status: 'Completed', userId, paymentReference: id('test_'), amount: 100.23, description: 'Cashwire test event', senderAccountName: 'Test Sender',
        sourceAccountNumber: '0000000000', sourceAccountType: 'personal', sourceBankCode: '000', destinationAccountNumber: '0000000001', destinationBankCode: '000',
      };
    default:
      throw unknownType(type);
  }
}

function unknownType(type: string) {
  return errors.validation('type', `unknown event type ${JSON.stringify(type.slice(0, 64))}; known: ${TEST_EVENT_TYPES.join(', ')}`, 'unknown_event_type');
}

export interface TestEventResult {
  event_id: string;
  delivery_id: string;
  type: string;
  endpoint_id: string;
  format: Format;
  /** Whether the endpoint subscribes to the type (it gets the test event either way). */
  subscribed: boolean;
  /** Held: the endpoint is disabled, and the delivery waits for it to be enabled. */
  held: boolean;
}

/** Writes the test event and its one delivery in one transaction (the outbox), and wakes the workers after COMMIT. */
export async function sendTestEvent(deps: Deps, caller: Caller, endpointId: string, type: string): Promise<TestEventResult> {
  if (!TEST_EVENT_TYPES.includes(type)) throw unknownType(type);
  return withTx(deps.db, async (tx) => {
    const e = await loadEndpoint(tx, caller, endpointId);
    const now = deps.clock.now();
    const eventId = deps.ids.next('evt_');
    const deliveryId = deps.ids.next('dlv_');
    const data = exampleData(type, (p) => deps.ids.next(p), now, e);
    // The event and its delivery to this endpoint in one statement; the insert is the queue's one way in (signed,
    // current URL, held while disabled). No fan-out: the targets are this endpoint alone.
    const { rows } = await tx.query<{ made: number }>(
      `WITH ev AS (
         INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at, trace_context, test)
         VALUES ($1, $2, $3, $4, NULL, $5::jsonb, $6, $7::text, true) RETURNING 1
       ), made AS (${enqueueSql(`(SELECT $1::text AS op, $2::text AS env, $3::text AS event_id, $8::text AS endpoint_id, NULL::text AS url,
                                         NULL::text AS secret, $9::text AS id, $6::timestamptz AS due FROM ev) AS t`, '$6::timestamptz')})
       SELECT (SELECT count(*)::int FROM made) AS made`,
      [e.operator_id, e.environment, eventId, type, JSON.stringify(data), now, currentTraceparent(), e.id, deliveryId],
    );
    if (rows[0]!.made !== 1) throw new Error(`test event ${eventId}: no delivery made for ${e.id}`);
    if (e.status === 'enabled') wakeAfterCommit(tx);
    return {
      event_id: eventId, delivery_id: deliveryId, type, endpoint_id: e.id, format: e.format,
      subscribed: e.events.includes('*') || e.events.includes(type), held: e.status === 'disabled',
    };
  });
}
