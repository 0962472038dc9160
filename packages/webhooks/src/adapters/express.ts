/**
 * Express: mount after `express.raw({ type: 'application/json' })` so `req.body` is the raw Buffer:
 *   app.post('/webhooks', express.raw({ type: 'application/json' }), expressHandler({ ... }))
 * Without a body parser it reads the stream itself; after `express.json()` it answers 500 (the raw bytes are gone).
 */
import type { WebhookHandlerOptions } from './core.js';
import { nodeHandler, type NodeHandlerOptions, type NodeRequest, type NodeResponse } from './node.js';

export function expressHandler<Tx = undefined>(
  options: WebhookHandlerOptions<Tx> & NodeHandlerOptions,
): (req: NodeRequest, res: NodeResponse) => Promise<void> {
  return nodeHandler(options, "mount express.raw({ type: 'application/json' }) on this route, not express.json()");
}
