/** One delivery's own actions: POST /webhook/deliveries/{id}/retry ("retry now" of a pending delivery). */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { Deps } from '../../payments/context.js';
import { retryDelivery } from '../../payments/events/events.js';
import { authenticate } from '../auth.js';
import { IdParams } from '../schemas.js';

export const deliveryRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  // The 'read' budget, like the endpoints' own actions (disable, enable, recover): an operator's tool, not a payment.
  const read = async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, 'read');
  app.post<{ Params: Static<typeof IdParams> }>('/webhook/deliveries/:id/retry', {
    schema: {
      params: IdParams,
      summary: 'Retry a pending delivery now',
      description: 'Makes a pending delivery due now and wakes the workers. 409 delivery_not_pending when it has ended (resend its event instead), '
        + 'delivery_in_flight while a worker is sending it, endpoint_disabled while its endpoint is disabled; behind an open circuit it is sent as the circuit\'s probe.',
    },
    onRequest: read,
  }, async (req) => retryDelivery(deps, req.caller, req.params.id));
};
