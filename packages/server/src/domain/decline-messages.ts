/**
 * What the hosted pages tell the payer when a payment is declined: one sentence per decline category, written for
 * the person paying (no jargon, and what they can do next). Pure. The API keeps the raw `decline_category`; only
 * pages show these sentences.
 */
import type { DeclineCategory } from './decision.js';

export const DECLINE_MESSAGES: Readonly<Record<DeclineCategory, string>> = {
  insufficient_funds: "There isn't enough money available for this payment, so add funds or use a different card or bank account and try again.",
  fraud_risk: "We couldn't complete this payment for security reasons; please try a different card or bank account, or contact the site's support team.",
  limit_exceeded: 'This payment would take you over your daily or monthly limit, so try a smaller amount or wait until your limit resets.',
  deposit_required: 'You need to make a deposit before you can withdraw, so make a deposit first and then try again.',
  user_declined: 'This payment was declined from your account and no money was moved; start again if you still want to pay.',
  credential_not_withdrawable: "Withdrawals can't be paid out to a card, so please choose a bank account instead and try again.",
  authentication_failed: "We couldn't confirm it was you, so no money was moved; try again and enter the code you were sent.",
};

/** For a category this table does not know (a newer one): still a sentence a payer can act on. */
export const GENERIC_DECLINE_MESSAGE = "This payment couldn't be completed and no money was moved; try again, or use a different card or bank account.";

export function declineMessage(category: string | null | undefined): string {
  return category && Object.prototype.hasOwnProperty.call(DECLINE_MESSAGES, category)
    ? DECLINE_MESSAGES[category as DeclineCategory]
    : GENERIC_DECLINE_MESSAGE;
}
