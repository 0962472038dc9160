/**
 * The charts (issue 16): attempts per bucket by outcome, attempt latency p50/p99 and queue depth, for the session's
 * environment, overall or for one endpoint, over the last hour (1-minute buckets), 6 hours (5 minutes) or 24 hours
 * (15 minutes). GET /dashboard/charts is the page (a GET form picks the window and the endpoint, so it works without
 * script too); GET /dashboard/charts/data is the same series as JSON for its script (assets/dashboard/charts.js, drawn
 * with Chart.js, refreshed every 20 s). Both are session pages: without a session, a redirect to the sign-in; a window
 * or an endpoint that is not one of the session's, a 4xx HTML page (the dashboard's rule).
 * The series come from delivery/stats.ts, at the time of the injected clock.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { listEndpoints } from '../../../delivery/endpoints.js';
import { deliveryStats, isWindow, OUTCOMES, WINDOWS, type DeliveryStats, type WindowName } from '../../../delivery/stats.js';
import { errorPage, esc, HIDE, layout, queryOf, send, str, when, type Dash, type Session } from './kit.js';

const WINDOW_LABELS: Record<WindowName, string> = { '1h': 'Last hour (1-minute buckets)', '6h': 'Last 6 hours (5-minute buckets)', '24h': 'Last 24 hours (15-minute buckets)' };

type Choice = { window: WindowName; endpoint: string; endpoints: { id: string; url: string }[] };

export function chartRoutes(app: FastifyInstance, { deps, sessions }: Dash): void {
  const { pageSession } = sessions;

  /** The window and endpoint asked for, checked against the session's endpoints; else the error page is sent. */
  async function choiceOf(req: FastifyRequest, reply: FastifyReply, s: Session): Promise<Choice | null> {
    const q = queryOf(req);
    const w = str(q.window) ?? '1h';
    const endpoint = str(q.endpoint) ?? 'all';
    if (!isWindow(w)) {
      errorPage(reply, 400, 'No such window', 'The window must be 1h, 6h or 24h.', s);
      return null;
    }
    const endpoints = (await listEndpoints(deps, s.caller)).data.map((e) => ({ id: e.id, url: e.url }));
    if (endpoint !== 'all' && !endpoints.some((e) => e.id === endpoint)) {
      errorPage(reply, 404, 'No such endpoint', `There is no endpoint ${endpoint.slice(0, 128)} in this environment.`, s);
      return null;
    }
    return { window: w, endpoint, endpoints };
  }

  const statsOf = (s: Session, c: Choice): Promise<DeliveryStats> => deliveryStats(
    deps.db,
    { operatorId: s.caller.operatorId, environment: s.caller.environment, ...(c.endpoint !== 'all' ? { endpointId: c.endpoint } : {}) },
    c.window,
    deps.clock.now(),
  );

  app.get('/dashboard/charts', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const c = await choiceOf(req, reply, s);
    if (!c) return reply;
    const st = await statsOf(s, c);
    return send(reply, 200, layout('Charts', chartsPage(c, st), s, ['chart.umd.min.js', 'charts.js']));
  });

  app.get('/dashboard/charts/data', HIDE, async (req, reply) => {
    const s = await pageSession(req, reply);
    if (!s) return reply;
    const c = await choiceOf(req, reply, s);
    if (!c) return reply;
    return reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(await statsOf(s, c));
  });
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const maxOf = (xs: (number | null)[]) => xs.reduce<number | null>((m, x) => (x === null ? m : m === null ? x : Math.max(m, x)), null);

function chartsPage(c: Choice, st: DeliveryStats): string {
  const params = new URLSearchParams({ window: c.window, endpoint: c.endpoint });
  const winOpts = (Object.keys(WINDOWS) as WindowName[]).map((w) => `<option value="${w}"${w === c.window ? ' selected' : ''}>${esc(WINDOW_LABELS[w])}</option>`).join('');
  const epOpts = [`<option value="all"${c.endpoint === 'all' ? ' selected' : ''}>All deliveries</option>`,
    ...c.endpoints.map((e) => `<option value="${esc(e.id)}"${e.id === c.endpoint ? ' selected' : ''}>${esc(e.url)} (${esc(e.id)})</option>`)].join('');
  const noAttempts = st.totals.attempts === 0;
  const noSamples = st.totals.samples === 0;
  // The numbers behind the charts, as text: what a screen reader (or a browser without script) gets.
  const summary = `<table class="stack" data-testid="chart-totals"><thead><tr>${OUTCOMES.map((o) => `<th>${esc(o)}</th>`).join('')}<th>p99 (worst bucket)</th><th>Pending (max)</th></tr></thead>
<tbody><tr>${OUTCOMES.map((o) => `<td data-label="${esc(o)}" data-testid="total-${o}">${esc(String(sum(st.attempts[o])))}</td>`).join('')}
<td data-label="p99 (worst bucket)">${maxOf(st.latency.p99) === null ? '–' : `${esc(String(maxOf(st.latency.p99)))} ms`}</td>
<td data-label="Pending (max)">${maxOf(st.queue.pending) === null ? '–' : esc(String(maxOf(st.queue.pending)))}</td></tr></tbody></table>`;
  const chart = (id: string, title: string, empty: string, isEmpty: boolean, note: string) => `<div class="card chart-card"><h2>${esc(title)}</h2>
 <p class="muted">${esc(note)}</p>
 <p class="muted chart-empty" data-testid="${id}-empty" data-empty-for="${id}"${isEmpty ? '' : ' hidden'}>${esc(empty)}</p>
 <div class="chart-box"${isEmpty ? ' hidden' : ''}><canvas id="${id}" data-testid="${id}" role="img" aria-label="${esc(title)}"></canvas></div></div>`;
  return `<style>.chart-box{position:relative;height:260px;width:100%} @media (max-width:640px){.chart-box{height:220px}} .chart-empty{padding:24px 0;text-align:center}</style>
 <div class="card" id="charts" data-url="/dashboard/charts/data?${esc(params.toString())}" data-refresh-ms="20000">
 <div class="row"><h1>Charts</h1><span class="muted" data-testid="charts-updated">As of ${when(st.as_of)}</span></div>
 <form method="get" action="/dashboard/charts" class="filters" data-testid="charts-form">
  <div><label for="window">Window</label><select id="window" name="window">${winOpts}</select></div>
  <div><label for="endpoint">Endpoint</label><select id="endpoint" name="endpoint">${epOpts}</select></div>
  <div><button type="submit" id="show">Show</button></div>
 </form>
 <p class="muted">Across every worker process. Times are bucket starts, UTC.</p>
 ${summary}
 </div>
 ${chart('chart-outcomes', 'Attempts by outcome', 'No deliveries in this window.', noAttempts, `Delivery attempts per ${st.bucket_seconds / 60}-minute bucket, by outcome (retry: failed, tried again later).`)}
 ${chart('chart-latency', 'Attempt latency', 'No deliveries in this window.', noAttempts, 'p50 and p99 of the time each attempt took, in milliseconds.')}
 ${chart('chart-queue', 'Queue depth', 'No queue samples in this window.', noSamples, 'Pending deliveries, and of them those due, sampled once a minute (the largest sample of each bucket).')}`;
}
