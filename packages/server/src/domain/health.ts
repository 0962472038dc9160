/**
 * Endpoint health, as a pure function of the current state and a batch of attempt outcomes (in the order they
 * finished). The circuit opens after `failureThreshold` consecutive failures and stays open for `cooldownMs`; then
 * one probe is let through (half-open): a success closes it, a failure opens it again. An endpoint failing without a
 * single success for `disableAfterMs`, or answering 410, is disabled.
 */
export interface HealthPolicy {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold: number;
  /** How long an open circuit waits before its probe. Default 60 s. */
  cooldownMs: number;
  /** Continuous failure that disables the endpoint. Default 5 days. */
  disableAfterMs: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = { failureThreshold: 5, cooldownMs: 60_000, disableAfterMs: 5 * 86_400_000 };

export interface Health {
  circuit: 'closed' | 'open';
  retryAt: Date | null;
  consecutiveFailures: number;
  failingSince: Date | null;
}

export interface Outcome {
  ok: boolean;
  /** A 410. */
  gone: boolean;
  at: Date;
}

export interface HealthChange {
  next: Health;
  /** Set when the endpoint must be disabled, with the reason. */
  disable?: 'gone' | 'failing';
  /** The circuit (re)opened: hold queued deliveries until next.retryAt. */
  opened: boolean;
  /** The circuit closed after being open: release what it held, and tell the operator. */
  recovered: boolean;
}

export function applyOutcomes(current: Health, outcomes: Outcome[], policy: HealthPolicy = DEFAULT_HEALTH_POLICY): HealthChange {
  let h = { ...current };
  let opened = false;
  let recovered = false;
  for (const o of outcomes) {
    if (o.ok) {
      if (h.circuit === 'open') {
        recovered = true;
        opened = false;
      }
      h = { circuit: 'closed', retryAt: null, consecutiveFailures: 0, failingSince: null };
      continue;
    }
    h.consecutiveFailures += 1;
    h.failingSince ??= o.at;
    if (o.gone) return { next: h, disable: 'gone', opened: false, recovered: false };
    if (o.at.getTime() - h.failingSince.getTime() >= policy.disableAfterMs) return { next: h, disable: 'failing', opened: false, recovered: false };
    if (h.circuit === 'open' || h.consecutiveFailures >= policy.failureThreshold) {
      h.circuit = 'open';
      h.retryAt = new Date(o.at.getTime() + policy.cooldownMs);
      opened = true;
      recovered = false;
    }
  }
  return { next: h, opened, recovered };
}

export function sameHealth(a: Health, b: Health): boolean {
  return a.circuit === b.circuit && a.consecutiveFailures === b.consecutiveFailures &&
    a.retryAt?.getTime() === b.retryAt?.getTime() && a.failingSince?.getTime() === b.failingSince?.getTime();
}
