/** Fetch API: a `(Request) => Promise<Response>` for Hono (`c.req.raw`), Next.js route handlers, Workers, Deno, Bun. */
import { handleWebhook, type WebhookHandlerOptions, type WebhookReply } from './core.js';

export function fetchHandler<Tx = undefined>(options: WebhookHandlerOptions<Tx>): (request: Request) => Promise<Response> {
  return async (request) => respond(await handleWebhook(options, new Uint8Array(await request.arrayBuffer()), request.headers));
}

function respond(reply: WebhookReply): Response {
  return new Response(JSON.stringify(reply.body), { status: reply.status, headers: { 'content-type': 'application/json; charset=utf-8' } });
}
