/**
 * The error catalog: every error code Cashwire answers with, its HTTP status and its default message. Services throw
 * `DomainError`s with a code from here; the HTTP layer (api/errors.ts) maps them to the one JSON shape
 * `{error: {code, message, field?}}` at the edge. The README's table is checked against this catalog by a test.
 */
const c = <S extends number>(status: S, message: string) => ({ status, message });

export const ERROR_CATALOG = {
  // 400: the request itself
  bad_request: c(400, 'the request is not valid HTTP this server can answer'),
  validation_failed: c(400, 'the request is not valid'),
  missing_field: c(400, 'a required field is missing'),
  invalid_type: c(400, 'a field has the wrong type'),
  invalid_value: c(400, 'a field has a value that is not allowed'),
  invalid_length: c(400, 'a field is too short or too long'),
  out_of_range: c(400, 'a number is out of range'),
  invalid_format: c(400, 'a field does not have the expected format'),
  malformed_json: c(400, 'the request body is not valid JSON'),
  empty_body: c(400, 'the request has Content-Type application/json but no body'),
  invalid_character: c(400, 'strings may not contain the NUL character (\\u0000)'),
  too_deep: c(400, 'the request body nests objects and arrays too deeply'),
  invalid_content_length: c(400, 'Content-Length does not match the body'),
  invalid_url_encoding: c(400, 'the URL is not valid percent-encoded UTF-8'),
  invalid_url: c(400, 'the URL is not an absolute http(s) URL'),
  https_required: c(400, 'production URLs must use https'),
  forbidden_address: c(400, 'the URL points at an address that production may not reach'),
  unknown_event_type: c(400, 'an event type is not one of the catalog'),
  invalid_range: c(400, 'the time range is empty or reversed'),
  invalid_cursor: c(400, 'the cursor is not one this API returned'),
  invalid_date: c(400, 'a date is not a real ISO 8601 date'),
  invalid_amount: c(400, 'the amount is not a positive amount of at most two decimals'),
  invalid_idempotency_key: c(400, 'X-Idempotency-Key must be 1 to 255 characters'),
  conflicting_reference: c(400, 'paymentReference and transactionReference differ'),
  token_or_credential_required: c(400, 'send exactly one of token or credential_id'),
  wrong_environment: c(400, 'the object belongs to the other environment of this key'),
  // KYC rules (domain/kyc.ts)
  invalid_email: c(400, 'email must be an email address'),
  invalid_state: c(400, 'a state must be a 2-letter US state code'),
  invalid_postal_code: c(400, 'postal_code must be 5 digits or 5+4 digits'),
  unsupported_country: c(400, 'country must be "US"'),
  underage: c(400, 'the user must be at least 18 years old'),
  invalid_last4: c(400, 'last4 must be the last 4 characters of the id'),
  state_required: c(400, 'government_id.state is required for this id type'),
  state_not_allowed: c(400, 'government_id.state applies only to drivers_license and state_id'),
  identity_not_verified: c(400, 'identity_verified must be true'),
  invalid_phone_number: c(400, 'phone_number must be a US phone number or E.164'),
  // Cards, tokens, the widget and Apple Pay (domain/card.ts, payments/native.ts)
  invalid_card_number: c(400, 'the card number is not a valid card number'),
  invalid_expiry: c(400, 'the expiry month or year is not valid'),
  card_expired: c(400, 'the card has expired'),
  invalid_cvv: c(400, 'the CVV does not have the right number of digits'),
  token_expired: c(400, 'the token has expired: tokens live 15 minutes'),
  bank_sign_in_failed: c(400, 'the bank username or password is wrong'),
  invalid_display_name: c(400, 'display_name must end in the last 4 digits of the card'),
  invalid_code: c(400, 'the one-time code must be 6 digits'),
  account_required: c(400, 'the operator has several settlement accounts: send account_id'),
  // Refunds (payments/refunds)
  refund_exceeds_intent: c(400, 'the refund is more than the intent it refunds'),
  // Disputes (domain/dispute-codes.ts)
  invalid_dispute_code: c(400, 'code must be a Visa (10.1–13.9), Mastercard (48xx, 4999) or ACH (Rnn) dispute reason code of the reference'),
  // Limit requests (payments/users/limits.ts)
  limit_not_higher: c(400, "requested_daily_limit must be more than the user's daily limit in force"),
  invalid_partial_limit: c(400, 'a partial approval must be less than the daily limit the user asked for'),
  // Test clocks (payments/clock/clock.ts)
  invalid_duration: c(400, 'duration must be whole seconds ("90") or units like "90s", "2m", "1h", "1d", "1h30m", from 1 second to 365 days'),
  seconds_or_duration: c(400, 'send exactly one of seconds or duration'),
  // 401
  unauthorized: c(401, 'missing or invalid API key: send Authorization: Bearer <key>'),
  unknown_public_key: c(401, 'no merchant has this publicKey'),
  invalid_signature: c(401, 'the signature does not match'),
  // 403
  sandbox_only: c(403, 'this endpoint exists only in the sandbox environment: use a sandbox key'),
  nonce_invalid: c(403, 'the widget session (nonce) is unknown, expired or already used: get a new URL from POST /user/{id}/url'),
  apple_pay_not_enabled: c(403, 'Apple Pay mobile is not enabled for this merchant identifier'),
  limits_not_displayed: c(403, 'this payment was not made with display_limits: true: its page offers no limit request'),
  // 404
  route_not_found: c(404, 'no such route'),
  user_not_found: c(404, 'no such user'),
  intent_not_found: c(404, 'no such intent'),
  token_not_found: c(404, 'no such token'),
  credential_not_found: c(404, 'no such credential'),
  endpoint_not_found: c(404, 'no such endpoint'),
  event_not_found: c(404, 'no such event'),
  transfer_not_found: c(404, 'no such transfer'),
  payment_session_not_found: c(404, 'no such payment session'),
  script_not_found: c(404, 'no such script'),
  account_not_found: c(404, 'no such account'),
  refund_not_found: c(404, 'no such refund'),
  dispute_not_found: c(404, 'no such dispute'),
  limit_request_not_found: c(404, 'no such limit request'),
  delivery_not_found: c(404, 'no such delivery'),
  // 409
  intent_already_decided: c(409, 'this payment is already decided'),
  intent_not_cancelable: c(409, 'the intent can no longer be canceled'),
  intent_not_pending: c(409, 'the intent is not pending'),
  intent_not_approved: c(409, 'the intent is not approved'),
  idempotency_conflict: c(409, 'a request with this X-Idempotency-Key is being processed; retry'),
  duplicate_reference: c(409, 'this reference was already used for another charge'),
  not_onboarded: c(409, 'set your Sendcash webhook URL first: POST /sendcash/onboarding'),
  transfer_not_pending: c(409, 'the transfer is no longer pending'),
  nothing_to_resend: c(409, 'the event has no webhook destination to resend to'),
  no_limit_request: c(409, 'the user has no open limit request'),
  intent_not_refundable: c(409, 'only an approved deposit (cash_in) can be refunded'),
  intent_not_disputable: c(409, 'only an approved deposit (cash_in) can be disputed'),
  dispute_exists: c(409, 'the intent already has a dispute: one per intent'),
  dispute_not_open: c(409, 'the dispute is already resolved (won or lost)'),
  delivery_not_pending: c(409, 'the delivery is no longer pending: resend the event instead'),
  delivery_in_flight: c(409, 'the delivery is being sent right now'),
  endpoint_disabled: c(409, "the delivery's endpoint is disabled: enable it to send its deliveries"),
  // 408, 413, 414, 415, 422, 429, 431
  request_timeout: c(408, 'the request took too long to arrive'),
  body_too_large: c(413, 'the request body is larger than this server accepts'),
  uri_too_long: c(414, 'the URL is longer than this server accepts'),
  unsupported_media_type: c(415, 'send the body as application/json'),
  idempotency_key_reused: c(422, 'this X-Idempotency-Key was already used with a different request body'),
  rate_limited: c(429, 'rate limit exceeded'),
  headers_too_large: c(431, 'the request line and headers are larger than this server accepts'),
  // 5xx: never on purpose
  internal_error: c(500, 'an unexpected error occurred; it was logged'),
  shutting_down: c(503, 'the server is shutting down; retry on another instance'),
  database_unavailable: c(503, 'PostgreSQL is not reachable'),
  // 503 from GET /readyz only
  no_worker: c(503, 'no delivery worker has recorded a heartbeat recently'),
  delivery_lagging: c(503, 'the oldest due delivery has waited longer than the readiness threshold'),
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CATALOG, code);
}

/** A refusal with a stable code from the catalog; the message says what, for a person. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = ERROR_CATALOG[code].message,
    readonly field?: string,
  ) {
    super(message);
  }
}

export type NotFoundKind = 'user' | 'intent' | 'token' | 'credential' | 'endpoint' | 'event' | 'transfer' | 'payment_session' | 'script' | 'account' | 'refund' | 'dispute' | 'limit_request' | 'delivery';
export type ConflictCode = {
  [K in ErrorCode]: (typeof ERROR_CATALOG)[K]['status'] extends 409 ? K : never;
}[ErrorCode];

export const errors = {
  validation: (field: string | undefined, message: string, code: ErrorCode = 'validation_failed') => new DomainError(code, message, field),
  unauthorized: (message?: string) => new DomainError('unauthorized', message),
  notFound: (what: NotFoundKind, id: string) => new DomainError(`${what}_not_found`, `no ${what} with id ${JSON.stringify(id)}`),
  wrongEnvironment: (what: string, id: string, env: string) =>
    new DomainError('wrong_environment', `${what} ${id} does not belong to the ${env} environment of this key`),
  conflict: (code: ConflictCode, message?: string) => new DomainError(code, message),
  sandboxOnly: () => new DomainError('sandbox_only'),
  idempotencyMismatch: () => new DomainError('idempotency_key_reused', undefined, 'X-Idempotency-Key'),
  rateLimited: (retryAfter: number) => new DomainError('rate_limited', `rate limit exceeded; retry in ${retryAfter} s`),
};
