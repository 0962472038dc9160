/** The intent state machine: which transitions exist. Pure. */
import type { IntentStatus } from '@cashwire/webhooks';

export type IntentAction = 'decide' | 'approve' | 'cancel' | 'settle';

const ALLOWED: Record<IntentAction, readonly IntentStatus[]> = {
  decide: ['created'], // the hosted page or authorize: created -> approved | pending | declined
  approve: ['pending'], // manual review: pending -> approved
  cancel: ['created', 'pending'], // only before approval
  settle: ['approved'],
};

export function canTransition(from: IntentStatus, action: IntentAction): boolean {
  return ALLOWED[action].includes(from);
}

export function allowedFrom(action: IntentAction): readonly IntentStatus[] {
  return ALLOWED[action];
}
