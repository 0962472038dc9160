/** `node:http`: reads the body itself. Also what the Express adapter stands on (Express's req/res are Node's). */
import { handleWebhook, rawBodyUnavailable, type WebhookHandlerOptions, type WebhookReply } from './core.js';

/** The parts of `http.IncomingMessage` used here (structural, so these types need no @types/node). */
export interface NodeRequest extends AsyncIterable<unknown> {
  headers: Record<string, string | string[] | undefined>;
  /** Set by a body parser (Express's `express.raw()`); absent on a bare `node:http` request. */
  body?: unknown;
  readableEnded?: boolean;
}

/** The parts of `http.ServerResponse` used here. */
export interface NodeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(chunk?: string): unknown;
}

export interface NodeHandlerOptions {
  /** Refuse larger bodies with 413. Default 1 MiB. */
  maxBodyBytes?: number;
}

const encoder = new TextEncoder();

async function readBody(req: NodeRequest, limit: number): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req) {
    const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : (chunk as Uint8Array);
    size += bytes.length;
    // Past the limit keep draining without keeping: leaving the loop would destroy the socket before the 413 is sent.
    if (size <= limit) chunks.push(bytes);
  }
  if (size > limit) return null;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

export function send(res: NodeResponse, reply: WebhookReply): void {
  res.statusCode = reply.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(reply.body));
}

/**
 * The body: what a raw-body parser left in `req.body`, else read from the stream. Null when something parsed it
 * into an object (the signed bytes are gone) or it is too large.
 */
export async function nodeBody(req: NodeRequest, limit: number): Promise<Uint8Array | string | 'too_large' | null> {
  if (req.body instanceof Uint8Array || typeof req.body === 'string') return req.body;
  if (req.body !== undefined || req.readableEnded) return null;
  return (await readBody(req, limit)) ?? 'too_large';
}

export function nodeHandler<Tx = undefined>(
  options: WebhookHandlerOptions<Tx> & NodeHandlerOptions,
  hint = 'something read the request stream before this handler',
): (req: NodeRequest, res: NodeResponse) => Promise<void> {
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  return async (req, res) => {
    const body = await nodeBody(req, limit);
    if (body === 'too_large') return send(res, { status: 413, body: { error: 'body_too_large', message: `The body exceeds ${limit} bytes` } });
    if (body === null) return send(res, rawBodyUnavailable(hint));
    send(res, await handleWebhook(options, body, req.headers));
  };
}
