/**
 * Admission, decided at the claim: which lanes are served, in which order, and how many deliveries each may give now.
 * Pure: no I/O and no clock of its own; the claim (queue.ts) hands in what it read and `now` (milliseconds), and runs
 * what this decides under the lanes' row locks, so that every decision holds across all worker processes.
 *
 * A lane is a destination within its operator: a registered endpoint, or the origin of a payment's own URL. Lanes are
 * served round robin across operators, then across the lanes of each operator: a backlog only delays its own tenant
 * and destination. A lane gives at most its cap minus its attempts in flight (leases), as many as its rate limit's
 * bucket holds, nothing while its circuit is open, one probe at a time once the circuit's wait is over, and one
 * delivery at a time, its oldest, when its endpoint delivers in order (`fifo`).
 */

/** A lane with pending work, as the claim's first look found it. */
export interface LaneView {
  operator_id: string;
  lane: string;
  /** When its first pending delivery is due (for a fifo lane: its oldest delivery, whatever comes due first). */
  head: Date;
  /** When it was last served (a sequence number); null if never. */
  served: number | null;
  /** The endpoint's settings and circuit, for a registered endpoint's lane. */
  max_concurrency: number | null;
  rate_limit_per_s: number | null;
  fifo: boolean;
  /** Its endpoint is disabled: nothing is taken from it until it is enabled (optional: false). */
  held?: boolean;
  /** The circuit: the endpoint's, or the lane's own for a per-payment origin. */
  circuit_state: 'closed' | 'open' | null;
  circuit_retry_at: Date | null;
}

/** A lane's row, read again under its lock: its rate-limit bucket and its own circuit. */
export interface LaneState {
  operator_id: string;
  lane: string;
  tokens: number | null;
  tokens_at: Date | null;
  circuit_state: 'closed' | 'open';
  circuit_retry_at: Date | null;
}

export interface AdmissionOptions {
  /** Attempts in flight at once to one destination, unless its endpoint sets max_concurrency. */
  destinationConcurrency: number;
}

/** What one lane may give in this claim. */
export interface LaneGrant {
  operator_id: string;
  lane: string;
  /** How many deliveries to take. */
  n: number;
  fifo: boolean;
  /** The bucket after refilling to `now`, before this claim's deliveries are taken from it; null without a rate limit. */
  tokens: number | null;
}

/** The circuit of a lane as it stands at `now`: open (wait until `until`), probing (one at a time), or closed. */
function circuit(v: Pick<LaneView, 'circuit_state' | 'circuit_retry_at'>, now: number): { kind: 'open'; until: number } | { kind: 'probe' } | { kind: 'closed' } {
  if (v.circuit_state !== 'open') return { kind: 'closed' };
  const until = v.circuit_retry_at?.getTime() ?? now;
  return until > now ? { kind: 'open', until } : { kind: 'probe' };
}

/** Attempts a lane may have in flight at once. */
export function capOf(v: Pick<LaneView, 'max_concurrency' | 'fifo' | 'circuit_state' | 'circuit_retry_at'>, now: number, o: AdmissionOptions): number {
  if (v.fifo || circuit(v, now).kind === 'probe') return 1;
  return v.max_concurrency ?? o.destinationConcurrency;
}

/**
 * The lanes to try, in serving order, and when the first of the others can give something (ms; undefined if none
 * waits). A lane is tried when its head is due, its endpoint is not disabled and its circuit does not hold it. The order: each operator's least
 * recently served lane first, operators least recently served first; then each operator's second lane; and so on.
 */
export function lanesToTry(lanes: LaneView[], now: number, max: number): { order: LaneView[]; wakeAt: number | undefined } {
  let wakeAt: number | undefined;
  const later = (t: number) => {
    wakeAt = wakeAt === undefined ? t : Math.min(wakeAt, t);
  };
  const ready: LaneView[] = [];
  for (const v of lanes) {
    if (v.held) continue; // its endpoint is disabled: enabling it wakes the workers
    const head = v.head.getTime();
    const c = circuit(v, now);
    if (c.kind === 'open') later(Math.max(head, c.until));
    else if (head > now) later(head);
    else ready.push(v);
  }
  const byOperator = new Map<string, LaneView[]>();
  for (const v of ready) {
    const list = byOperator.get(v.operator_id);
    if (list) list.push(v);
    else byOperator.set(v.operator_id, [v]);
  }
  const servedKey = (s: number | null) => s ?? -1;
  const operators = [...byOperator.entries()].map(([op, list]) => {
    list.sort((a, b) => servedKey(a.served) - servedKey(b.served) || a.head.getTime() - b.head.getTime() || (a.lane < b.lane ? -1 : 1));
    return { op, list, last: Math.max(...list.map((v) => servedKey(v.served))) };
  });
  operators.sort((a, b) => a.last - b.last || (a.op < b.op ? -1 : 1));
  const order: LaneView[] = [];
  for (let rank = 0; order.length < max; rank++) {
    let any = false;
    for (const o of operators) {
      const v = o.list[rank];
      if (!v) continue;
      any = true;
      order.push(v);
      if (order.length >= max) break;
    }
    if (!any) break;
  }
  return { order, wakeAt };
}

/**
 * How many deliveries each locked lane gives, `want` in all, shared one at a time in serving order (so that a small
 * claim still reaches every operator before any gets a second). `live` is each lane's attempts in flight, counted
 * under the lane's lock. Also returns when a lane that gives nothing now (rate limit) can give again.
 */
export function grant(
  order: LaneView[],
  state: Map<string, LaneState>,
  live: Map<string, number>,
  now: number,
  want: number,
  o: AdmissionOptions,
): { grants: LaneGrant[]; wakeAt: number | undefined } {
  let wakeAt: number | undefined;
  const rows: { g: LaneGrant; room: number }[] = [];
  for (const v of order) {
    const key = laneKey(v);
    const s = state.get(key);
    if (!s) continue; // locked by another worker's claim: it is serving this lane
    // A per-payment origin's circuit is the lane's own, read under its lock.
    const view = v.lane.startsWith('url:') ? { ...v, circuit_state: s.circuit_state, circuit_retry_at: s.circuit_retry_at } : v;
    const c = circuit(view, now);
    if (c.kind === 'open') {
      wakeAt = Math.min(wakeAt ?? Infinity, c.until);
      continue;
    }
    let room = Math.max(0, capOf(view, now, o) - (live.get(key) ?? 0));
    let tokens: number | null = null;
    if (v.rate_limit_per_s) {
      const rate = v.rate_limit_per_s;
      const t0 = s.tokens ?? rate;
      const at = s.tokens_at?.getTime() ?? now;
      tokens = Math.min(rate, t0 + (Math.max(0, now - at) / 1000) * rate);
      const whole = Math.floor(tokens);
      if (whole < 1) wakeAt = Math.min(wakeAt ?? Infinity, now + Math.ceil(((1 - tokens) / rate) * 1000));
      room = Math.min(room, whole);
    }
    if (room > 0) rows.push({ g: { operator_id: v.operator_id, lane: v.lane, n: 0, fifo: v.fifo, tokens }, room });
  }
  let left = want;
  while (left > 0) {
    let gave = false;
    for (const r of rows) {
      if (left === 0) break;
      if (r.g.n < r.room) {
        r.g.n++;
        left--;
        gave = true;
      }
    }
    if (!gave) break;
  }
  return { grants: rows.map((r) => r.g).filter((g) => g.n > 0), wakeAt };
}

export function laneKey(v: { operator_id: string; lane: string }): string {
  return `${v.operator_id}\u0000${v.lane}`;
}
