/**
 * The merchant's transaction status, moved only forward. The authorize response, the user's redirect and each
 * webhook may arrive in any order and more than once; folding them all through `nextStatus` ends in the same state
 * whatever the order, and a repeat changes nothing.
 *
 *   created → pending → approved → settled        declined, canceled: final, reachable before approval only
 */
import type { WebhookEvent } from './parse.js';

export const TRANSACTION_STATUSES = ['created', 'pending', 'approved', 'settled', 'declined', 'canceled'] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/** Every status reachable from each one. */
const FORWARD: Record<TransactionStatus, readonly TransactionStatus[]> = {
  created: ['pending', 'approved', 'settled', 'declined', 'canceled'],
  pending: ['approved', 'settled', 'declined', 'canceled'],
  approved: ['settled'],
  settled: [],
  declined: [],
  canceled: [],
};

/** `incoming` if it lies ahead of `current`, else `current` (a repeat, a late arrival, or an unknown value). */
export function nextStatus(current: TransactionStatus, incoming: TransactionStatus): TransactionStatus {
  return FORWARD[current]?.includes(incoming) ? incoming : current;
}

export function isFinalStatus(status: TransactionStatus): boolean {
  return FORWARD[status]?.length === 0;
}

/**
 * The status an event reports. `intent.approved` carries `pending` under manual review. Sendcash's `Completed`
 * means the money moved (`settled`); `Failed` is `declined`. Operational events report none (null).
 */
export function statusOf(event: WebhookEvent): TransactionStatus | null {
  switch (event.type) {
    case 'intent.approved':
      return event.data.status === 'pending' ? 'pending' : 'approved';
    case 'intent.settled':
      return 'settled';
    case 'intent.declined':
      return 'declined';
    case 'intent.canceled':
      return 'canceled';
    case 'Payment.Status':
      return event.data.status === 'Completed' ? 'settled' : event.data.status === 'Failed' ? 'declined' : null;
    default:
      return null;
  }
}
