/** Writes endpoint health after a batch of outcomes: circuit, auto-disable, and the operational events. */
import type { Clock, IdGenerator } from '../clock.js';
import { withTx, type Db } from '../db/pool.js';
import { applyOutcomes, sameHealth, type Health, type HealthPolicy, type Outcome } from '../domain/health.js';
import { disableRow, type EndpointRow } from '../payments/endpoints.js';
import { insertOperationalEvent } from '../store/events.js';

export async function recordHealth(
  deps: { db: Db; clock: Clock; ids: IdGenerator },
  endpoint: { operator_id: string; id: string },
  outcomes: Outcome[],
  policy: HealthPolicy,
): Promise<void> {
  await withTx(deps.db, async (tx) => {
    const { rows } = await tx.query<EndpointRow>('SELECT * FROM endpoints WHERE operator_id = $1 AND id = $2 FOR UPDATE', [endpoint.operator_id, endpoint.id]);
    const e = rows[0];
    if (!e || e.status === 'disabled') return; // disabled or deleted meanwhile: nothing to learn
    const current: Health = { circuit: e.circuit_state, retryAt: e.circuit_retry_at, consecutiveFailures: e.consecutive_failures, failingSince: e.failing_since };
    const change = applyOutcomes(current, outcomes, policy);
    const now = deps.clock.now();
    if (!sameHealth(current, change.next)) {
      await tx.query(
        `UPDATE endpoints SET circuit_state = $3, circuit_retry_at = $4, consecutive_failures = $5, failing_since = $6, updated_at = $7
          WHERE operator_id = $1 AND id = $2`,
        [e.operator_id, e.id, change.next.circuit, change.next.retryAt, change.next.consecutiveFailures, change.next.failingSince, now],
      );
    }
    if (change.disable) {
      await disableRow(deps, tx, e, change.disable, now);
      return;
    }
    if (change.opened && change.next.retryAt) {
      // Hold the endpoint's queued deliveries until the probe, so they take no worker capacity meanwhile.
      await tx.query(
        `UPDATE deliveries SET next_attempt_at = $3 WHERE operator_id = $1 AND endpoint_id = $2 AND status = 'pending' AND leased_by IS NULL AND next_attempt_at < $3`,
        [e.operator_id, e.id, change.next.retryAt],
      );
    }
    if (change.recovered) {
      // What the open circuit held (parked at its retry time) is due now; deliveries waiting for their own retry stay.
      if (e.circuit_retry_at) {
        await tx.query(
          `UPDATE deliveries SET next_attempt_at = $4 WHERE operator_id = $1 AND endpoint_id = $2 AND status = 'pending' AND next_attempt_at = $3`,
          [e.operator_id, e.id, e.circuit_retry_at, now],
        );
      }
      await insertOperationalEvent(tx, deps, e, 'endpoint.recovered', { endpoint_id: e.id, url: e.url, at: now.toISOString() });
    }
  });
}
