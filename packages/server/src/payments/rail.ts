import type { IntentRow } from '../store/rows.js';

/**
 * Real money movement is outside Cashwire. A rail adapter moves the money for an approved intent when the
 * settlement job says it is due, and returns the account the transaction settled on.
 */
export interface RailAdapter {
  settle(intent: IntentRow): Promise<{ accountId: string | null }>;
}

/** The sandbox rail and the default: nothing moves, every settlement succeeds. */
export const ledgerOnlyRail: RailAdapter = {
  async settle(intent) {
    return { accountId: intent.account_id };
  },
};
