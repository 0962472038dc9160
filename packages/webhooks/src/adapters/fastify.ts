/**
 * Fastify: its JSON parser discards the raw bytes, so give the webhook route a buffer parser in its own scope:
 *
 *   app.register(async (scope) => {
 *     scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
 *     scope.post('/webhooks', fastifyHandler({ ... }));
 *   });
 */
import { handleWebhook, rawBodyUnavailable, type WebhookHandlerOptions, type WebhookReply } from './core.js';

/** The parts of `FastifyRequest` and `FastifyReply` used here. */
export interface FastifyRequestLike {
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}
export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(payload?: unknown): unknown;
}

export function fastifyHandler<Tx = undefined>(
  options: WebhookHandlerOptions<Tx>,
): (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown> {
  return async (request, reply) => {
    const body = request.body;
    const r: WebhookReply =
      body instanceof Uint8Array || typeof body === 'string'
        ? await handleWebhook(options, body, request.headers)
        : rawBodyUnavailable("add a content-type parser with { parseAs: 'buffer' } for this route");
    return reply.code(r.status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(r.body));
  };
}
