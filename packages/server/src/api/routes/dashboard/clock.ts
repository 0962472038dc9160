/** The sandbox test clock and its advance form. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { advanceClock, clockState, parseDuration, type ClockAdvance } from '../../../payments/clock/clock.js';
import { DomainError, httpStatus } from '../../errors.js';
import { esc, hidden, HIDE, layout, send, str, when, type Dash, type Session } from './kit.js';

export function clockRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, postSession } = sessions;
  // ---- Sandbox clock ------------------------------------------------------------------------------------------

  const seconds = (n: number) => {
    const parts: string[] = [];
    for (const [u, k] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
      if (n >= k || (u === 's' && parts.length === 0)) { parts.push(`${Math.floor(n / k)}${u}`); n %= k; }
    }
    return parts.join(' ');
  };

  async function clockPage(reply: FastifyReply, s: Session, status: number, opts: { error?: string; advanced?: ClockAdvance; duration?: string } = {}) {
    if (s.caller.environment !== 'sandbox') {
      return send(reply, status, layout('Sandbox clock', `<div class="card"><h1>Sandbox clock</h1>
 <p class="notice" data-testid="clock-notice">The test clock exists in the sandbox only: sign in with a sandbox key to advance it. Production always runs on real time.</p></div>`, s));
    }
    const st = await clockState(deps, s.caller);
    const a = opts.advanced;
    const moved = a ? `<div class="card" data-testid="advanced"><h2>Advanced by ${esc(seconds(a.advanced_by_seconds))}</h2>
<p class="notice" role="status">What came due earlier:</p>
<dl data-testid="moved">${Object.entries(a.moved).map(([k, v]) => `<dt>${esc(k.replace(/_/g, ' '))}</dt><dd data-testid="moved-${esc(k)}">${esc(String(v))}</dd>`).join('')}</dl></div>` : '';
    const body = `${moved}<div class="card"><h1>Sandbox clock</h1>
 <dl><dt>Advanced in all</dt><dd data-testid="clock-total">${esc(seconds(st.total_advanced_seconds))}</dd>
<dt>Advances</dt><dd>${esc(String(st.advances))}</dd>
${st.last_advanced_at ? `<dt>Last advanced</dt><dd>${when(st.last_advanced_at)}</dd>` : ''}</dl>
 <p class="muted">Advancing moves this sandbox's pending retries, settlements and expiries earlier, as if the time had passed. Production and other operators are untouched.</p>
 <form method="post" action="/dashboard/clock/advance" data-testid="advance-form">${hidden(s)}
<div class="filters">
 <div><label for="duration">Advance by</label><input id="duration" name="duration" required maxlength="32" placeholder="e.g. 2m, 1h, 1d" value="${esc(opts.duration ?? '')}"></div>
 <div><button class="primary" type="submit" id="advance">Advance</button></div>
</div>
${opts.error ? `<p class="error" role="alert" data-testid="error">${esc(opts.error)}</p>` : ''}
 </form></div>`;
    return send(reply, status, layout('Sandbox clock', body, s));
  }

  app.get('/dashboard/clock', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    return clockPage(reply, s, 200);
  });

  app.post('/dashboard/clock/advance', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    if (s.caller.environment !== 'sandbox') return clockPage(reply, s, 403);
    const duration = str(((req.body ?? {}) as Record<string, unknown>).duration)?.slice(0, 32) ?? '';
    const secs = parseDuration(duration);
    if (secs === null) return clockPage(reply, s, 400, { duration, error: `"${duration}" is not a duration: use whole seconds ("90") or "90s", "2m", "1h", "1d" (at most 365 days).` });
    try {
      return clockPage(reply, s, 200, { advanced: await advanceClock(deps, s.caller, secs) });
    } catch (e) {
      if (e instanceof DomainError) return clockPage(reply, s, httpStatus(e), { duration, error: e.message });
      throw e;
    }
  });
}
