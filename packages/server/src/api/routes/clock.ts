/**
 * Test clocks (sandbox only): POST /sandbox/clock/advance and GET /sandbox/clock (payments/clock/clock.ts). A
 * production key gets 403 sandbox_only before the body is looked at.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import { advanceClock, clockState, MAX_ADVANCE_SECONDS, secondsOf } from '../../payments/clock/clock.js';
import { errors } from '../../domain/errors.js';
import { keyAuth } from '../auth.js';
import { errorsOf, Nullable } from '../schemas.js';

const AdvanceBody = Type.Object({
  seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ADVANCE_SECONDS, description: 'how far to advance, in seconds (1 .. 31536000)' })),
  duration: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'or as text: "90" (seconds), "90s", "2m", "1h", "1d", "1h30m"; at most 365 days' })),
});

const Moved = Type.Object({
  deliveries: Type.Integer({ description: "pending deliveries whose next attempt moved (and whose age limit moved with their creation time)" }),
  settlements: Type.Integer({ description: "approved intents' settle_at" }),
  widget_sessions: Type.Integer({ description: "unspent widget nonces' expiry" }),
  tokens: Type.Integer({ description: "tokens' expiry" }),
  idempotency_keys: Type.Integer({ description: "idempotency keys' expiry" }),
  circuits: Type.Integer({ description: 'open circuits (endpoints, payment URL origins) whose probe moved' }),
  secret_rotations: Type.Integer({ description: "rotated endpoint secrets' grace period" }),
});
const Advanced = Type.Object({
  advanced_by_seconds: Type.Integer(),
  moved: Moved,
  total_advanced_seconds: Type.Integer({ description: "everything this operator's sandbox clock has been advanced" }),
  advanced_at: Type.String({ description: 'the real time of the advance (ISO 8601)' }),
}, { $id: 'ClockAdvance' });
const State = Type.Object({
  total_advanced_seconds: Type.Integer(),
  advances: Type.Integer(),
  last_advanced_at: Nullable(Type.String()),
}, { $id: 'ClockState' });

export const clockRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  // Before validation: a production key is refused whatever its body says.
  const sandboxOnly = async (req: FastifyRequest) => {
    if (req.caller.environment !== 'sandbox') throw errors.sandboxOnly();
  };

  app.post<{ Body: Static<typeof AdvanceBody> }>('/sandbox/clock/advance', {
    schema: {
      body: AdvanceBody,
      response: { 200: Advanced, ...errorsOf(400, 401, 403) },
      summary: "Sandbox test clock: advance the operator's sandbox by {seconds} or {duration} (\"2m\", \"1h\"): its pending retries, settlements and " +
        'expiries (widget sessions, tokens, idempotency keys, circuits) come due as if that time had passed; production and other operators are ' +
        'untouched; signatures and body timestamps keep real time. 400 seconds_or_duration, invalid_duration, out_of_range; 403 sandbox_only',
    },
    onRequest: auth('create'),
    preValidation: sandboxOnly,
  }, async (req) => advanceClock(deps, req.caller, secondsOf(req.body)));

  app.get('/sandbox/clock', {
    schema: { response: { 200: State, ...errorsOf(401, 403) }, summary: "How far this operator's sandbox clock has been advanced in all. 403 sandbox_only" },
    onRequest: auth('read'),
  }, async (req) => clockState(deps, req.caller));
};
