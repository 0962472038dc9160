/**
 * The state machines' tables, without a database: every allowed move with its target state and event, and that
 * everything else is refused (the services answer 409 for a move the table does not have).
 */
import { describe, expect, it } from 'vitest';
import {
  allowedFrom, decisionAction, DISPUTE, INTENT, LIMIT_REQUEST, REFUND, transition, TRANSFER, type Machine,
} from '../src/domain/state-machine.js';

/** Every (state, action) pair of a machine, with what the table answers: the table as a list to compare with. */
function moves<S extends string, A extends string, E extends string>(m: Machine<S, A, E>, states: (S | 'new')[], actions: A[]) {
  const out: string[] = [];
  for (const s of states) for (const a of actions) {
    const t = transition(m, s, a);
    if (t) out.push(`${s} --${a}--> ${t.to}${t.event ? ` (${t.event})` : ''}`);
  }
  return out;
}

describe('intents', () => {
  const states = ['new', 'created', 'pending', 'approved', 'declined', 'canceled'] as const;
  const actions = ['open', 'approve', 'hold', 'decline', 'review', 'cancel', 'settle'] as const;
  it('has exactly these moves', () => {
    expect(moves(INTENT, [...states], [...actions])).toEqual([
      'new --open--> created',
      'new --approve--> approved (intent.approved)',
      'new --hold--> pending (intent.approved)',
      'new --decline--> declined (intent.declined)',
      'created --approve--> approved (intent.approved)',
      'created --hold--> pending (intent.approved)',
      'created --decline--> declined (intent.declined)',
      'created --cancel--> canceled (intent.canceled)',
      'pending --review--> approved (intent.approved)',
      'pending --cancel--> canceled (intent.canceled)',
      'approved --settle--> approved (intent.settled)',
    ]);
  });
  it('ends: a declined or canceled intent moves no more; an approved one only settles', () => {
    for (const a of actions) {
      expect(transition(INTENT, 'declined', a)).toBeUndefined();
      expect(transition(INTENT, 'canceled', a)).toBeUndefined();
    }
    expect(transition(INTENT, 'approved', 'cancel')).toBeUndefined();
    expect(transition(INTENT, 'created', 'review')).toBeUndefined(); // manual approval needs pending
  });
  it('names where an action is allowed from, and maps a decision to its move', () => {
    expect(allowedFrom(INTENT, 'cancel')).toEqual(['created', 'pending']);
    expect(allowedFrom(INTENT, 'review')).toEqual(['pending']);
    expect(decisionAction('approved')).toBe('approve');
    expect(decisionAction('pending')).toBe('hold');
    expect(decisionAction('declined')).toBe('decline');
  });
});

describe('refunds', () => {
  it('are decided as they are made, and do not change after', () => {
    expect(moves(REFUND, ['new', 'approved', 'declined'], ['approve', 'decline'])).toEqual([
      'new --approve--> approved (refund.approved)',
      'new --decline--> declined (refund.declined)',
    ]);
  });
});

describe('disputes', () => {
  it('open, then are won or lost once', () => {
    expect(moves(DISPUTE, ['new', 'created', 'won', 'lost'], ['open', 'win', 'lose'])).toEqual([
      'new --open--> created (dispute.created)',
      'created --win--> won (dispute.won)',
      'created --lose--> lost (dispute.lost)',
    ]);
  });
});

describe('Sendcash transfers', () => {
  it('wait Pending, then complete or fail once, each with a Payment.Status', () => {
    expect(moves(TRANSFER, ['new', 'Pending', 'Completed', 'Failed'], ['open', 'complete', 'fail'])).toEqual([
      'new --open--> Pending',
      'Pending --complete--> Completed (Payment.Status)',
      'Pending --fail--> Failed (Payment.Status)',
    ]);
  });
});

describe('limit requests', () => {
  it('are asked once, then approved, approved in part or declined once', () => {
    expect(moves(LIMIT_REQUEST, ['new', 'requested', 'approved', 'partial', 'declined'], ['request', 'approve', 'approve_partially', 'decline'])).toEqual([
      'new --request--> requested (user.limits_request)',
      'requested --approve--> approved (user.limits_request.updated)',
      'requested --approve_partially--> partial (user.limits_request.partial_approval)',
      'requested --decline--> declined (user.limits_request.declined)',
    ]);
  });
});
