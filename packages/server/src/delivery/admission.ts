/**
 * Admission: whether a claimed delivery may be sent now, or when to look again. Pure: no I/O and no clock of its own;
 * the caller hands in `now` (milliseconds) and reports when an attempt starts and finishes.
 *
 * Per destination (a registered endpoint, or the origin of a per-payment URL) it caps attempts in flight, applies the
 * endpoint's rate limit (a token bucket), and lets a single probe through an open circuit. A delivery whose endpoint
 * is disabled waits with the held ones; one that came due before its open circuit's probe time waits for it.
 */
import { HELD } from './queue.js';

export interface AdmissionInput {
  operator_id: string;
  endpoint_id: string | null;
  url: string;
  endpoint_status: 'enabled' | 'disabled' | null;
  circuit_state: 'closed' | 'open' | null;
  circuit_retry_at: Date | null;
  max_concurrency: number | null;
  rate_limit_per_s: number | null;
}

export interface AdmissionOptions {
  /** Attempts in flight at once to one destination, unless its endpoint sets max_concurrency. */
  destinationConcurrency: number;
  /** A delivery held back by its destination's cap or probe is due again after this. */
  deferMs: number;
}

/** A destination: the endpoint, or the origin of a per-payment URL. */
export function destinationOf(d: Pick<AdmissionInput, 'operator_id' | 'endpoint_id' | 'url'>): string {
  if (d.endpoint_id) return `ep:${d.operator_id}/${d.endpoint_id}`;
  try {
    return `url:${new URL(d.url).origin}`;
  } catch {
    return `url:${d.url}`;
  }
}

export function createAdmission(o: AdmissionOptions) {
  const inFlight = new Map<string, number>();
  const buckets = new Map<string, { tokens: number; at: number }>();

  return {
    inFlight: (dest: string) => inFlight.get(dest) ?? 0,

    /**
     * `undefined` when the delivery may go now (the caller then calls `started`), else the time (ms) to look again.
     * `probes` collects the destinations whose probe this round already let through.
     */
    admit(d: AdmissionInput, dest: string, now: number, probes: Set<string>): number | undefined {
      if (d.endpoint_status === 'disabled') return HELD.getTime();
      if (d.circuit_state === 'open' && d.circuit_retry_at && d.circuit_retry_at.getTime() > now) return d.circuit_retry_at.getTime();
      const n = inFlight.get(dest) ?? 0;
      if (d.circuit_state === 'open') {
        // Half-open: one probe at a time.
        if (probes.has(dest) || n > 0) return now + o.deferMs;
        probes.add(dest);
        return undefined;
      }
      const cap = d.max_concurrency ?? o.destinationConcurrency;
      if (n >= cap) return now + o.deferMs;
      if (d.rate_limit_per_s) {
        const rate = d.rate_limit_per_s;
        const b = buckets.get(dest) ?? { tokens: rate, at: now };
        b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
        b.at = now;
        buckets.set(dest, b);
        if (b.tokens < 1) return now + Math.ceil(((1 - b.tokens) / rate) * 1000);
        b.tokens -= 1;
      }
      return undefined;
    },

    started(dest: string): void {
      inFlight.set(dest, (inFlight.get(dest) ?? 0) + 1);
    },

    finished(dest: string): void {
      const n = (inFlight.get(dest) ?? 1) - 1;
      if (n <= 0) inFlight.delete(dest);
      else inFlight.set(dest, n);
    },
  };
}

export type Admission = ReturnType<typeof createAdmission>;
