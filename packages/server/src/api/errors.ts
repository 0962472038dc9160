/** Every error Cashwire answers with: one JSON shape `{error: {code, message, field?}}`, a stable code, a 4xx. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
  toJSON() {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) } };
  }
}

export const errors = {
  validation: (field: string | undefined, message: string, code = 'validation_failed') => new ApiError(400, code, message, field),
  unauthorized: (message = 'missing or invalid API key: send Authorization: Bearer <key>') => new ApiError(401, 'unauthorized', message),
  notFound: (what: string, id: string) => new ApiError(404, `${what}_not_found`, `no ${what} with id ${JSON.stringify(id)}`),
  wrongEnvironment: (what: string, id: string, env: string) =>
    new ApiError(400, 'wrong_environment', `${what} ${id} does not belong to the ${env} environment of this key`),
  conflict: (code: string, message: string) => new ApiError(409, code, message),
  sandboxOnly: () => new ApiError(403, 'sandbox_only', 'this endpoint exists only in the sandbox environment: use a sandbox key'),
  idempotencyMismatch: () =>
    new ApiError(422, 'idempotency_key_reused', 'this X-Idempotency-Key was already used with a different request body', 'X-Idempotency-Key'),
  rateLimited: (retryAfter: number) => new ApiError(429, 'rate_limited', `rate limit exceeded; retry in ${retryAfter} s`),
};
