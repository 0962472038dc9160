/**
 * The few Cashwire (Push Cash) API calls the cashier needs. The API key stays on the server: the browser only ever
 * sees the payment session `url`.
 */

export class CashwireError extends Error {
  /**
   * @param {number} status HTTP status, or 0 for a network error
   * @param {{code?: string, message?: string} | undefined} error the API's error object
   */
  constructor(status, error) {
    super(`Cashwire answered ${status || 'nothing'}: ${error?.code ?? 'network_error'}${error?.message ? ` (${error.message})` : ''}`);
    this.status = status;
    this.code = error?.code ?? 'network_error';
  }
}

/**
 * @param {{ url: string, apiKey: string, timeoutMs?: number }} options
 */
export function cashwireClient({ url, apiKey, timeoutMs = 15_000 }) {
  const base = url.replace(/\/$/, '');

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {Record<string, string>} [headers]
   * @returns {Promise<any>}
   */
  async function call(method, path, body, headers = {}) {
    let res;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch {
      throw new CashwireError(0, undefined);
    }
    const json = await res.json().catch(() => null);
    if (!res.ok) throw new CashwireError(res.status, json?.error);
    return json;
  }

  /**
   * A create request that may be retried: with the same X-Idempotency-Key a retry returns the first answer, so an
   * ambiguous failure (timeout, 5xx) never makes a second user or intent.
   * @param {string} path
   * @param {unknown} body
   * @param {string} idempotencyKey
   */
  async function create(path, body, idempotencyKey) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call('POST', path, body, { 'x-idempotency-key': idempotencyKey });
      } catch (err) {
        const retriable = err instanceof CashwireError && (err.status === 0 || err.status >= 500);
        if (!retriable || attempt === 3) throw err;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  return {
    /**
     * Registers a user with the details the KYC check verified. The same `tag` always returns the same user.
     * @param {Record<string, unknown>} user
     * @param {string} idempotencyKey
     * @returns {Promise<{ id: string }>}
     */
    registerUser: (user, idempotencyKey) => create('/user', user, idempotencyKey),
    /**
     * @param {Record<string, unknown>} intent
     * @param {string} transactionId our own transaction id: the X-Idempotency-Key
     * @returns {Promise<{ id: string, url: string, status: string }>}
     */
    createIntent: (intent, transactionId) => create('/intent', intent, transactionId),
    /**
     * @param {string} id
     * @returns {Promise<{ id: string, tag: string | null, idempotency_key: string | null, status: string, amount: number,
     *   direction: string, decline_category: string | null, transactions: { status: string }[] }>}
     */
    getIntent: (id) => call('GET', `/intent/${encodeURIComponent(id)}`),
  };
}
