/** Endpoints: health, create (secret shown once), edit, disable and enable, rotate, reveal, recover, test event. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createEndpoint, listEndpoints, rotateSecret, setEnabled } from '../../../delivery/endpoints.js';
import { errors } from '../../../domain/errors.js';
import { DomainError, httpStatus } from '../../errors.js';
import { errorPage, esc, FORMATS, hidden, HIDE, layout, send, str, when, type Dash, type Session } from './kit.js';

export function endpointRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession, postSession } = sessions;
  // ---- Endpoints ----------------------------------------------------------------------------------------------

  type Ep = Awaited<ReturnType<typeof listEndpoints>>['data'][number];
  const epAction = (s: Session, e: Ep, action: 'disable' | 'enable' | 'rotate', label: string) =>
    `<form method="post" action="/dashboard/endpoints/${encodeURIComponent(e.id)}/${action}" style="display:inline">${hidden(s)}<button type="submit" data-testid="${action}">${esc(label)}</button></form>`;

  function secretCard(title: string, id: string, secret: string): string {
    return `<div class="card" data-testid="secret-card"><h2>${esc(title)}</h2>
<p>The signing secret of <code>${esc(id)}</code>. <strong>Copy it now: it is shown this once</strong>, never again on these pages.</p>
<pre data-testid="secret">${esc(secret)}</pre></div>`;
  }

  async function endpointsPage(reply: FastifyReply, s: Session, status: number, opts: { notice?: string; error?: string; secret?: string; form?: Record<string, string> } = {}) {
    const { data } = await listEndpoints(deps, s.caller);
    const f = opts.form ?? {};
    const rowsHtml = data.map((e) => {
      const health = e.health.circuit === 'open'
        ? `<span class="status failed">circuit open</span>${e.health.circuit_retry_at ? ` <span class="muted">probe ${when(e.health.circuit_retry_at)}</span>` : ''}`
        : '<span class="status">circuit closed</span>';
      const failing = e.health.consecutive_failures > 0
        ? `<br><span class="muted">${esc(String(e.health.consecutive_failures))} failures${e.health.failing_since ? `, since ${when(e.health.failing_since)}` : ''}</span>` : '';
      return `<tr data-testid="endpoint-row" data-endpoint-id="${esc(e.id)}">
<td data-label="URL"><div><code>${esc(e.url)}</code><br><span class="muted"><code>${esc(e.id)}</code></span></div></td>
<td data-label="Status"><div><span class="status ${e.status === 'enabled' ? 'succeeded' : 'failed'}" data-testid="endpoint-status">${esc(e.status)}</span>${e.disabled_reason ? `<br><span class="muted" data-testid="disabled-reason">${esc(e.disabled_reason)}${e.disabled_at ? `, ${when(e.disabled_at)}` : ''}</span>` : ''}</div></td>
<td data-label="Format" class="nw"><div>${esc(e.format)}${e.ordering === 'fifo' ? ' <span class="muted">(fifo)</span>' : ''}</div></td>
<td data-label="Events"><div>${e.events.map((t) => `<code>${esc(t)}</code>`).join(', ')}</div></td>
<td data-label="Health"><div>${health}${failing}</div></td>
<td data-label="Actions"><div>${e.status === 'enabled' ? epAction(s, e, 'disable', 'Disable') : epAction(s, e, 'enable', 'Enable')} ${epAction(s, e, 'rotate', 'Rotate secret')}</div></td></tr>`;
    }).join('\n');
    const opt = (v: string) => `<option value="${v}"${(f.format ?? 'pushcash') === v ? ' selected' : ''}>${v}</option>`;
    const body = `${opts.secret ?? ''}
 <div class="card"><h1>Endpoints</h1>
 ${opts.notice ? `<p class="notice" role="status" data-testid="notice">${esc(opts.notice)}</p>` : ''}
 ${data.length === 0 ? '<p class="muted" data-testid="no-endpoints">No endpoint yet.</p>' : `<table class="stack"><thead><tr><th>URL</th><th>Status</th><th class="nw">Format</th><th>Events</th><th>Health</th><th></th></tr></thead><tbody>
 ${rowsHtml}</tbody></table>`}
 <p class="muted">Sending a test event from here is not available yet.</p></div>
 <div class="card"><h2>Add an endpoint</h2>
 <form method="post" action="/dashboard/endpoints" data-testid="create-endpoint">${hidden(s)}
<div class="filters">
 <div><label for="ep-url">URL</label><input id="ep-url" name="url" required maxlength="2048" placeholder="https://example.com/webhooks" value="${esc(f.url ?? '')}"></div>
 <div><label for="ep-events">Events (comma-separated, or *)</label><input id="ep-events" name="events" required maxlength="4000" value="${esc(f.events ?? '*')}"></div>
 <div><label for="ep-format">Format</label><select id="ep-format" name="format">${FORMATS.map(opt).join('')}</select></div>
 <div><button class="primary" type="submit" id="create-endpoint">Add endpoint</button></div>
</div>
${opts.error ? `<p class="error" role="alert" data-testid="error">${esc(opts.error)}</p>` : ''}
 </form></div>`;
    return send(reply, status, layout('Endpoints', body, s));
  }

  app.get('/dashboard/endpoints', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const done = str(((req.query ?? {}) as Record<string, unknown>).done);
    const notice = done === 'disabled' ? 'Disabled: its deliveries are held until it is enabled.' : done === 'enabled' ? 'Enabled: held deliveries are on their way.' : undefined;
    return endpointsPage(reply, s, 200, { notice });
  });

  app.post('/dashboard/endpoints', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const b = (req.body ?? {}) as Record<string, unknown>;
    const form = { url: str(b.url)?.trim() ?? '', events: str(b.events) ?? '', format: str(b.format) ?? 'pushcash' };
    try {
      const events = form.events.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
      if (form.url.length === 0 || form.url.length > 2048) throw errors.validation('url', 'url must be an absolute http(s) URL of at most 2048 characters', 'invalid_url');
      if (events.length === 0 || events.length > 50 || events.some((t) => t.length > 64)) throw errors.validation('events', 'events: one to 50 event types, comma-separated, or *', 'invalid_value');
      const format = FORMATS.find((x) => x === form.format);
      if (!format) throw errors.validation('format', 'format must be pushcash, standard or sendcash', 'invalid_format');
      const made = await createEndpoint(deps, s.caller, { url: form.url, events, format });
      return endpointsPage(reply, s, 200, { notice: `Endpoint ${made.id} added.`, secret: secretCard('Endpoint added', made.id, made.secret) });
    } catch (e) {
      if (e instanceof DomainError) return endpointsPage(reply, s, httpStatus(e), { error: e.message, form });
      throw e;
    }
  });

  const idOf = (req: FastifyRequest) => String((req.params as { id?: unknown }).id ?? '');
  const checkId = (id: string) => {
    if (id.length === 0 || id.length > 128) throw errors.notFound('endpoint', id.slice(0, 128));
  };

  for (const action of ['disable', 'enable'] as const) {
    app.post(`/dashboard/endpoints/:id/${action}`, HIDE, async (req, reply) => {
      const s = await postSession(req, reply);
      if (!s) return reply;
      const id = idOf(req);
      try {
        checkId(id);
        await setEnabled(deps, s.caller, id, action === 'enable');
      } catch (e) {
        if (e instanceof DomainError) return errorPage(reply, httpStatus(e), `Cannot ${action}`, e.message, s);
        throw e;
      }
      return reply.status(303).header('location', `/dashboard/endpoints?done=${action}d`).header('cache-control', 'no-store').send();
    });
  }

  app.post('/dashboard/endpoints/:id/rotate', HIDE, async (req, reply) => {
    const s = await postSession(req, reply);
    if (!s) return reply;
    const id = idOf(req);
    try {
      checkId(id);
      const r = await rotateSecret(deps, s.caller, id);
      const until = r.secret_rotation ? ` The previous secret stays valid until ${r.secret_rotation.previous_valid_until.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.` : '';
      return endpointsPage(reply, s, 200, { notice: `Secret of ${r.id} rotated.${until}`, secret: secretCard('New secret', r.id, r.secret) });
    } catch (e) {
      if (e instanceof DomainError) return errorPage(reply, httpStatus(e), 'Cannot rotate', e.message, s);
      throw e;
    }
  });

}
