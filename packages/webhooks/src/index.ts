// The catalog, rendering and signing: shared with the server, which signs with them.
export * from './catalog.js';
export * from './render.js';
export * from './signing.js';
// The receiver.
export * from './errors.js';
export { verify, DEFAULT_TOLERANCE_MS, type HeadersLike, type VerifyInput } from './verify.js';
export {
  parseEvent, detectVersion, amountInCents, tagOf,
  type WebhookEvent, type WebhookEventType, type IntentEvent, type RefundEvent, type DisputeEvent, type UserEvent, type OperationalEvent,
  type PaymentStatusEvent, type ParseContext,
} from './parse.js';
export * from './status.js';
export * from './sendcash.js';
export * from './process-once.js';
export { handleWebhook, type WebhookHandlerOptions, type WebhookReply } from './adapters/core.js';
export * from './adapters/express.js';
export * from './adapters/fastify.js';
export * from './adapters/fetch.js';
export { nodeHandler, type NodeHandlerOptions, type NodeRequest, type NodeResponse } from './adapters/node.js';
