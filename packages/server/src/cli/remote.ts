/**
 * The CLI's client of a running Cashwire: `--api-url` / `--api-key`, or CASHWIRE_API_URL / CASHWIRE_API_KEY (default
 * URL http://localhost:4000). Every request says it comes from the CLI (`X-Cashwire-Client: cli`), so it counts
 * against the CLI's own rate-limit budget, not the operator's backend traffic.
 */
import type { Command } from 'commander';

export const CLI_CLIENT_HEADER = 'x-cashwire-client';
export const CLI_VERSION = '0.1.0';

export interface RemoteOptions {
  apiUrl?: string;
  apiKey?: string;
}

/** Adds --api-url and --api-key to a command that talks to a running Cashwire. */
export function withRemote(cmd: Command): Command {
  return cmd
    .option('--api-url <url>', 'the Cashwire API (env CASHWIRE_API_URL; default http://localhost:4000)')
    .option('--api-key <key>', 'an API key of the operator (env CASHWIRE_API_KEY)');
}

export class RemoteError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface Remote {
  readonly apiUrl: string;
  /** JSON in, JSON out; a non-2xx answer throws a RemoteError with the API's error code and message. */
  request<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  /** JSON in, status and JSON out, whatever the status (a declined authorization or refund answers 401 with a body). */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** The raw response (for streams). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export function remote(o: RemoteOptions): Remote {
  const apiUrl = (o.apiUrl ?? process.env.CASHWIRE_API_URL ?? 'http://localhost:4000').replace(/\/$/, '');
  const apiKey = o.apiKey ?? process.env.CASHWIRE_API_KEY;
  if (!apiKey) throw new Error('an API key is needed: pass --api-key or set CASHWIRE_API_KEY (a sandbox key of your operator)');
  const headers = (extra: HeadersInit = {}): Record<string, string> => ({
    authorization: `Bearer ${apiKey}`, [CLI_CLIENT_HEADER]: 'cli', 'user-agent': `cashwire-cli/${CLI_VERSION}`, ...(extra as Record<string, string>),
  });
  const doFetch = async (path: string, init: RequestInit = {}) => {
    try {
      return await fetch(apiUrl + path, { ...init, headers: headers(init.headers) });
    } catch (err) {
      throw new Error(`cannot reach Cashwire at ${apiUrl}: ${(err as Error).message} (is it running? --api-url / CASHWIRE_API_URL)`, { cause: err });
    }
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await doFetch(path, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: json, text };
  };
  return {
    apiUrl,
    fetch: doFetch,
    call: async (method, path, body) => {
      const { status, body: json } = await call(method, path, body);
      return { status, body: json };
    },
    async request(method, path, body) {
      const { status, body: json, text } = await call(method, path, body);
      if (status < 200 || status > 299) {
        const e = json?.error;
        throw new RemoteError(status, e?.code ?? `http_${status}`, e?.message ?? (text.slice(0, 200) || `HTTP ${status}`));
      }
      return json;
    },
  };
}

/** Prints a result as the other commands do: pretty JSON on stdout. */
export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
