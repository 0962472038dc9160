/** Why a webhook was refused. Branch on `code`, never on the message. */
export type WebhookErrorCode =
  | 'missing_secret'
  | 'missing_header'
  | 'malformed_header'
  | 'bad_signature'
  | 'stale_timestamp'
  | 'future_timestamp'
  | 'malformed_json'
  | 'unknown_type';

const DEFAULTS: Record<WebhookErrorCode, { status: 400 | 401 | 500; message: string }> = {
  // The receiver's own configuration is wrong: no request can pass, so it is a server error, not the sender's.
  missing_secret: { status: 500, message: 'No usable webhook secret was configured' },
  missing_header: { status: 401, message: 'A signature header is missing' },
  malformed_header: { status: 401, message: 'A signature header is malformed' },
  bad_signature: { status: 401, message: 'No signature matches any configured secret' },
  stale_timestamp: { status: 401, message: 'The webhook timestamp is older than the tolerance' },
  future_timestamp: { status: 401, message: 'The webhook timestamp is further in the future than the tolerance' },
  malformed_json: { status: 400, message: 'The body is not the expected JSON' },
  unknown_type: { status: 400, message: 'The event type is not in the catalog' },
};

export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  readonly code: WebhookErrorCode;
  /** The HTTP status an endpoint should answer: 401 authenticity, 400 content, 500 receiver misconfiguration. */
  readonly status: 400 | 401 | 500;

  constructor(code: WebhookErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? DEFAULTS[code].message, options);
    this.code = code;
    this.status = DEFAULTS[code].status;
  }
}
