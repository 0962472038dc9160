/**
 * The state machines of intents, refunds, disputes, transfers and limit requests: for each, one table `transition(state, action) →
 * {to, event}`. Pure. The services apply a move in one place per machine (the row's new state and its event written
 * together, in one transaction); no route or SQL statement picks a target state of its own.
 *
 * `new` is the state of a row that does not exist yet: creating one is a move out of `new`, so what a creation writes
 * (a decided authorization, a refund) comes from the table too.
 */
export interface Move<S extends string, E extends string> {
  to: S;
  /** The event the move writes, or null for a move without one. */
  event: E | null;
}

export interface Machine<S extends string, A extends string, E extends string> {
  /** The noun in messages: "intent", "refund". */
  name: string;
  table: { readonly [F in S | 'new']?: { readonly [X in A]?: Move<S, E> } };
}

export function machine<S extends string, A extends string, E extends string>(name: string, table: Machine<S, A, E>['table']): Machine<S, A, E> {
  return { name, table };
}

/** The move, or undefined when `action` is not allowed from `from`. */
export function transition<S extends string, A extends string, E extends string>(m: Machine<S, A, E>, from: S | 'new', action: A): Move<S, E> | undefined {
  return m.table[from]?.[action];
}

/** The states `action` is allowed from (for messages: "… needs an intent that is created or pending"). */
export function allowedFrom<S extends string, A extends string, E extends string>(m: Machine<S, A, E>, action: A): (S | 'new')[] {
  return (Object.keys(m.table) as (S | 'new')[]).filter((s) => m.table[s]?.[action] !== undefined);
}

// ---- Intents ------------------------------------------------------------------------------------------------------

export type IntentState = 'created' | 'pending' | 'approved' | 'declined' | 'canceled';
/**
 * open: a hosted session or a step-up waits for its page. approve / hold / decline: the decision (rules, or the page):
 * approved, pending manual review, declined. review: manual review approves. cancel: before approval. settle: money
 * moved (the status stays approved; the event says so).
 */
export type IntentAction = 'open' | 'approve' | 'hold' | 'decline' | 'review' | 'cancel' | 'settle';
export type IntentEvent = 'intent.approved' | 'intent.declined' | 'intent.canceled' | 'intent.settled';

const decided = {
  approve: { to: 'approved', event: 'intent.approved' },
  hold: { to: 'pending', event: 'intent.approved' }, // Push announces manual review as intent.approved with status pending
  decline: { to: 'declined', event: 'intent.declined' },
} as const;

export const INTENT = machine<IntentState, IntentAction, IntentEvent>('intent', {
  new: { open: { to: 'created', event: null }, ...decided }, // POST /authorize decides as it creates
  created: { ...decided, cancel: { to: 'canceled', event: 'intent.canceled' } },
  pending: { review: { to: 'approved', event: 'intent.approved' }, cancel: { to: 'canceled', event: 'intent.canceled' } },
  approved: { settle: { to: 'approved', event: 'intent.settled' } },
});

/** The decision's outcome as the move that writes it. */
export function decisionAction(status: 'approved' | 'pending' | 'declined'): 'approve' | 'hold' | 'decline' {
  return status === 'approved' ? 'approve' : status === 'pending' ? 'hold' : 'decline';
}

// ---- Refunds ------------------------------------------------------------------------------------------------------

export type RefundState = 'approved' | 'declined';
export type RefundAction = 'approve' | 'decline';
export type RefundEvent = 'refund.approved' | 'refund.declined';

/** A refund is decided as it is made (the card network answers at once); a decided refund does not change. */
export const REFUND = machine<RefundState, RefundAction, RefundEvent>('refund', {
  new: { approve: { to: 'approved', event: 'refund.approved' }, decline: { to: 'declined', event: 'refund.declined' } },
});

// ---- Disputes -----------------------------------------------------------------------------------------------------

export type DisputeState = 'created' | 'won' | 'lost';
export type DisputeAction = 'open' | 'win' | 'lose';
export type DisputeEvent = 'dispute.created' | 'dispute.won' | 'dispute.lost';

export const DISPUTE = machine<DisputeState, DisputeAction, DisputeEvent>('dispute', {
  new: { open: { to: 'created', event: 'dispute.created' } },
  created: { win: { to: 'won', event: 'dispute.won' }, lose: { to: 'lost', event: 'dispute.lost' } },
});

// ---- Sendcash transfers -------------------------------------------------------------------------------------------

export type TransferState = 'Pending' | 'Completed' | 'Failed';
export type TransferAction = 'open' | 'complete' | 'fail';
export type TransferEvent = 'Payment.Status';

export const TRANSFER = machine<TransferState, TransferAction, TransferEvent>('transfer', {
  new: { open: { to: 'Pending', event: null } },
  Pending: { complete: { to: 'Completed', event: 'Payment.Status' }, fail: { to: 'Failed', event: 'Payment.Status' } },
});

// ---- Limit requests -----------------------------------------------------------------------------------------------

export type LimitRequestState = 'requested' | 'approved' | 'partial' | 'declined';
export type LimitRequestAction = 'request' | 'approve' | 'approve_partially' | 'decline';
export type LimitRequestEvent = 'user.limits_request' | 'user.limits_request.updated' | 'user.limits_request.partial_approval' | 'user.limits_request.declined';

export const LIMIT_REQUEST = machine<LimitRequestState, LimitRequestAction, LimitRequestEvent>('limit request', {
  new: { request: { to: 'requested', event: 'user.limits_request' } },
  requested: {
    approve: { to: 'approved', event: 'user.limits_request.updated' },
    approve_partially: { to: 'partial', event: 'user.limits_request.partial_approval' },
    decline: { to: 'declined', event: 'user.limits_request.declined' },
  },
});
