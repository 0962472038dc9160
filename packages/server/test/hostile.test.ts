/**
 * The hostile campaign: generated requests against every route of the server's own route table
 * (`running.app.routeTable`, so a route added later is covered without touching this file), the unauthenticated ones
 * too. For each route, valid-ish requests are built from the route's JSON schemas (params, querystring, headers, body)
 * and one part is made hostile: path params (bad percent-encodings such as %FF%FE, %C3%28, %u0000, %00, raw non-UTF-8
 * bytes, ids of 0 to 9,000 characters, prototype keys, other tenants' ids), the query (wrong types, repeated and
 * bracketed keys, prototype keys, huge values, one over the header limit), headers (a wrong, missing, other operator's,
 * other environment's, huge or non-ASCII Authorization; idempotency keys; Expect, Content-Length, Host), Content-Type,
 * the method, and the body: a mutation of the valid-ish value at one node (wrong type, just out of range, huge string,
 * NUL, lone surrogate, raw invalid UTF-8, arrays 10,000 deep, prototype keys, unknown fields, a missing field) or a raw
 * body (malformed JSON, BOM, UTF-16, duplicate keys, 10,000 deep at the root, exactly at and just over the 64 KiB limit).
 * Requests go out through node:http with raw paths (hostile/http.ts), at most 8 in flight, each with a deadline.
 *
 * Properties (each route has its own; a run is a batch of 8 requests):
 *   1. hostile requests: never a 5xx, never a timeout or a reset; every 4xx in the documented error shape (or the
 *      documented exception below); no answer carries operator A's ids or keys unasked; no 2xx for one of B's sandbox
 *      objects asked for with another key; GET /healthz answers 200 after each batch; Object.prototype stays clean.
 *   2. rejected requests write nothing: sent one at a time; around each, exact count(*) of every table in schema public
 *      except the ones listed in hostile/db.ts (rate_counters, schema_migrations); a 4xx leaves every count as it was.
 *   3. other tenants and environments: the other operator's sandbox ids (user, intent, token, endpoint, event, transfer)
 *      in the path or in an id field of the body, with operator B's keys or A's production key: always a 4xx in the
 *      error shape, every row of operator A unchanged, and with B's keys exactly the answer (status, code) an id that
 *      exists nowhere gets: another operator's objects are simply not found.
 * Then the known-bad inputs of the bug report as plain cases, and a coverage check (every route got requests, and
 * answers that came from the route itself), so that the campaign cannot pass by sending nothing.
 *
 * Seed and size: the seed is fixed (20261201) and runs are few, so that `npm test` stays within about 30 s.
 *   CASHWIRE_FUZZ_RUNS=N     runs per property and route (default 4; a run is a batch of 8 requests). For a longer
 *                            campaign: CASHWIRE_FUZZ_RUNS=50 npx vitest run packages/server/test/hostile.test.ts
 *   CASHWIRE_FUZZ_SEED=S     another seed (default 20261201).
 *   CASHWIRE_FUZZ_REPORT=F   also write every violation, grouped, as JSON to file F.
 * A failure lists each distinct violation (route, input class, status, body excerpt, the request) with the seed and
 * the index of the fast-check run that found it; the same seed generates the same cases again (run k is the same
 * whatever CASHWIRE_FUZZ_RUNS, as long as it is > k), the fixtures' random ids aside.
 * Violations are collected for the whole run rather than stopping (and shrinking) at the first one, so that one run
 * gives the whole list.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookupFn } from '../src/security/ssrf.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, userBody, type Api, type Keys } from './helpers.js';
import { diffCounts, rowCounter, tenantDigest, type Counter } from './hostile/db.js';
import { caseArb, deepArray, excerpt, foreignCaseArb, idKind, isGraphql, routeKey, type Case, type Kind, type Route, type World } from './hostile/generate.js';
import { inFlight, send, type Outcome, type RawRequest, type RawResponse } from './hostile/http.js';

/* ==================================================================================================================
 * THE DOCUMENTED EXCEPTIONS to "every 4xx answers {"error": {"code": /^[a-z][a-z0-9_]*$/, "message": string,
 * "field"?: string}}" with Content-Type application/json. One place: the checker reads only this table.
 *   route                        status  answer instead                                                    the error shape
 *   POST /authorize              401     the declined intent itself (id, status "declined")                also accepted
 *   POST /authorization          401     the same (the alias of /authorize)                                also accepted
 *   POST /refund                 401     the declined refund itself (id refund_…, status "declined")       also accepted
 *   GET  /healthz                503     {"status": "unavailable", "error": {code, message}} (a 5xx)       -
 *   GET  /graphql                4xx     GraphQL's error body {"errors": [{"message": ...}, ...]}          NOT accepted
 *   POST /graphql                4xx     GraphQL's error body {"errors": [{"message": ...}, ...]}          NOT accepted
 *   GET  /pay/:op/:id            404     an HTML page (text/html): "Payment session not found"             also accepted
 *   GET  /sendcash/pay/:op/:id   404     an HTML page (text/html): "Transfer not found"                    also accepted
 *   GET  /widget/ (and /widget)  403     an HTML page (text/html): "This payment form has expired"         also accepted
 *   GET  /docs/static/index.html 302     a redirect to the API reference, /docs/ (Swagger UI's own route)  -
 *   HEAD /docs/                  4xx     no body: a HEAD answer has none (the GET twin is /docs's)        also accepted
 *   GET, POST /dashboard/*       303     a redirect within /dashboard (to the sign-in without a session,   -
 *                                        or back to a page once a form is done), no body
 *                                4xx     an HTML page: a form with its error, CSRF or Origin refused, no    also accepted
 *                                        such object, or 429 past the dashboard's own budget
 *   (the HTTP layer, any path)   431,400 the error shape, also on /graphql (see below)                     required
 * The HTML pages answer as HTML only the 404 (403) of their handler (routes/pay.ts, sendcash.ts, native.ts); a param or
 * query that fails their schema goes through the app's error handler, as JSON. The dashboard (routes/dashboard/) is a
 * browser's: its answers are HTML pages and redirects (303), never the error shape, except the app's own errors
 * (body too large, a bad JSON body) that come before its handlers. The decision POSTs are JSON.
 * The HTTP layer answers before any route is chosen (a 431, or HTTP it cannot parse: an unknown method, a bad
 * Content-Length, no Host): there the error shape is accepted on every path, /graphql's too.
 * 2xx answers are not checked for shape. An exception applies to the route that answers: same URL, the method sent.
 * A declined authorization is not a rejection: it writes its intent (property 2 does not count it).
 * ================================================================================================================ */
interface Exception { route: string; status: (s: number) => boolean; answer: string; errorShapeAccepted: boolean; accepts(r: RawResponse): boolean; notARejection?: boolean }
/** An exception's route is one route, or (ending in *) every route that starts with what comes before the *. */
const routeMatches = (e: Exception, route: string) => (e.route.endsWith('*') ? route.startsWith(e.route.slice(0, -1)) : e.route === route);
const EXCEPTIONS: Exception[] = [
  { route: 'POST /authorize', status: (s) => s === 401, answer: 'the declined intent', errorShapeAccepted: true, accepts: declinedIntent, notARejection: true },
  { route: 'POST /authorization', status: (s) => s === 401, answer: 'the declined intent', errorShapeAccepted: true, accepts: declinedIntent, notARejection: true },
  // A declined refund answers 401 with the refund, as a declined authorization does (it writes the refund).
  { route: 'POST /refund', status: (s) => s === 401, answer: 'the declined refund', errorShapeAccepted: true, accepts: declinedRefund, notARejection: true },
  { route: 'GET /healthz', status: (s) => s === 503, answer: '{status: "unavailable", error}', errorShapeAccepted: false, accepts: (r) => isObj(r.json) && r.json.status === 'unavailable' && errorObject(r.json.error) === null },
  // Readiness of the whole system: the campaign's server runs no worker, so it is not ready (no_worker).
  { route: 'GET /readyz', status: (s) => s === 503, answer: '{status: "not_ready", checks, error}', errorShapeAccepted: false, accepts: (r) => isObj(r.json) && r.json.status === 'not_ready' && isObj(r.json.checks) && errorObject(r.json.error) === null },
  { route: 'GET /graphql', status: is4xx, answer: "GraphQL's {errors: [...]}", errorShapeAccepted: false, accepts: graphqlErrors },
  { route: 'POST /graphql', status: is4xx, answer: "GraphQL's {errors: [...]}", errorShapeAccepted: false, accepts: graphqlErrors },
  { route: 'GET /pay/:op/:id', status: (s) => s === 404, answer: 'an HTML page', errorShapeAccepted: true, accepts: htmlPage },
  { route: 'GET /sendcash/pay/:op/:id', status: (s) => s === 404, answer: 'an HTML page', errorShapeAccepted: true, accepts: htmlPage },
  // The widget page (an iframe's document): a bad, expired or spent nonce is a page that says so.
  { route: 'GET /widget/', status: (s) => s === 403, answer: 'an HTML page', errorShapeAccepted: true, accepts: htmlPage },
  { route: 'GET /widget', status: (s) => s === 403, answer: 'an HTML page', errorShapeAccepted: true, accepts: htmlPage },
  // The API reference (Swagger UI, routes/meta.ts): its index.html redirects to the page itself.
  { route: 'GET /docs/static/index.html', status: (s) => s === 302, answer: 'a redirect to /docs/', errorShapeAccepted: false, accepts: (r) => r.headers.location === '/docs/' && r.body.length === 0 },
  // Fastify adds HEAD /docs/ for the trailing-slash form of GET /docs; an answer to HEAD has no body to be in the error shape.
  { route: 'HEAD /docs/', status: is4xx, answer: 'no body (HEAD)', errorShapeAccepted: true, accepts: (r) => r.body.length === 0 },
  // The dashboard (routes/dashboard/): a browser's pages, so redirects and HTML pages, never the error shape. A route
  // ending in * covers every route under it.
  { route: 'GET /dashboard*', status: (s) => s === 303, answer: 'a redirect within the dashboard', errorShapeAccepted: false, accepts: redirectWithin('/dashboard') },
  { route: 'GET /dashboard*', status: is4xx, answer: 'an HTML page', errorShapeAccepted: true, accepts: htmlPage },
  { route: 'POST /dashboard*', status: (s) => s === 303, answer: 'a redirect within the dashboard', errorShapeAccepted: false, accepts: redirectWithin('/dashboard') },
  { route: 'POST /dashboard*', status: is4xx, answer: 'an HTML page', errorShapeAccepted: true, accepts: htmlPage },
];

const SEED = Number(process.env.CASHWIRE_FUZZ_SEED ?? 20261201);
const RUNS = Math.max(1, Number(process.env.CASHWIRE_FUZZ_RUNS ?? 4) || 4);
const BATCH = 8;
const IN_FLIGHT = 8;
const TIMEOUT_MS = 4_000;
/** After this many requests of one route and property got no answer, the rest of that property is skipped (and fails). */
const MAX_NO_ANSWER = 2;
const CODE = /^[a-z][a-z0-9_]*$/;

function is4xx(s: number) { return s >= 400 && s < 500; }
function isObj(v: unknown): v is Record<string, any> { return !!v && typeof v === 'object' && !Array.isArray(v); }
function declinedIntent(r: RawResponse): boolean { return isObj(r.json) && typeof r.json.id === 'string' && r.json.status === 'declined'; }
function declinedRefund(r: RawResponse): boolean { return isObj(r.json) && typeof r.json.id === 'string' && r.json.id.startsWith('refund_') && r.json.status === 'declined'; }
function redirectWithin(prefix: string) { return (r: RawResponse): boolean => typeof r.headers.location === 'string' && r.headers.location.startsWith(prefix) && r.body.length === 0; }
function htmlPage(r: RawResponse): boolean { return /^text\/html/i.test(String(r.headers['content-type'] ?? '')) && /^\s*<!doctype html>/i.test(r.text); }
function graphqlErrors(r: RawResponse): boolean {
  return /^application\/(graphql-response\+)?json/i.test(String(r.headers['content-type'] ?? '')) && isObj(r.json) && Array.isArray(r.json.errors) && r.json.errors.length > 0
    && r.json.errors.every((e: unknown) => isObj(e) && typeof e.message === 'string');
}

/** The `error` object of the documented shape; null when it is right, else what is wrong. */
function errorObject(e: unknown): string | null {
  if (!isObj(e)) return `"error" is ${e === undefined ? 'missing' : `not an object but ${excerpt(JSON.stringify(e) ?? String(e), 40)}`}`;
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'field'].includes(k));
  if (extra.length) return `"error" has other keys: ${extra.join(', ')}`;
  if (typeof e.code !== 'string' || !CODE.test(e.code)) return `error.code ${JSON.stringify(e.code)} does not match ${CODE}`;
  if (typeof e.message !== 'string') return 'error.message is not a string';
  if ('field' in e && typeof e.field !== 'string') return 'error.field is not a string';
  return null;
}

/** The documented error shape; null when the answer has it, else what is wrong. */
export function errorShape(r: RawResponse): string | null {
  const ct = String(r.headers['content-type'] ?? '');
  if (!/^application\/json/i.test(ct)) return `Content-Type is ${ct ? excerpt(ct, 40) : '(none)'}, not application/json`;
  if (r.json === undefined) return r.body.length ? 'the body is not JSON' : 'the body is empty';
  if (!isObj(r.json)) return 'the body is not a JSON object';
  const keys = Object.keys(r.json);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys are ${keys.join(', ') || '(none)'}, not just "error"${r.json.error === undefined ? '' : `; ${errorObject(r.json.error) ?? 'error is fine'}`}`;
  return errorObject(r.json.error);
}

/* ------------------------------------------------------------------------------------------------------------------
 * The server, the operators and their objects
 * ---------------------------------------------------------------------------------------------------------------- */

/** No real DNS in tests: every name resolves to a public address (production webhook URLs pass the SSRF check). */
const resolver: LookupFn = (_host, options, cb) => (options.all ? cb(null, [{ address: '93.184.216.34', family: 4 }]) : cb(null, '93.184.216.34', 4));
const s = await startTestServer({}, undefined, { resolver });
const base = s.url;

/** Every route of the table, once: the HEAD twins Fastify adds to GET routes are skipped. */
const ROUTES: Route[] = (() => {
  const table = s.running.app!.routeTable as Route[];
  const seen = new Set<string>();
  return table.filter((r) => {
    const k = routeKey(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return !(r.method === 'HEAD' && table.some((g) => g.method === 'GET' && g.url === r.url));
  });
})();

/** Routes whose valid-ish requests would lock the fuzzing operator out (rate limits, Sendcash key): a throwaway operator's key. */
// POST /account too: a second settlement account makes the operator's later intents need account_id.
const SINK_ROUTES = ['PATCH /operator/settings', 'POST /sendcash/keys/rotate', 'POST /sendcash/onboarding', 'POST /account'];

let world: World;
let counter: Counter;
/** Every string that belongs to operator A: none may appear in an answer to a request that neither names it nor carries A's key. */
let foreignStrings: string[] = [];
let ownIdsSet = new Set<string>();

interface Made { keys: Keys; api: Api; ids: Record<Kind, string[]>; sessions: World['own']['sessions']; payers: World['own']['payers']; publicKey: string; secretKey: string }

async function populate(keys: Keys, name: string): Promise<Made> {
  const api = client(base, keys.sandbox);
  const ids: Record<Kind, string[]> = { user: [], intent: [], endpoint: [], event: [], transfer: [], token: [] };
  const sessions: Made['sessions'] = [];
  const payers: Made['payers'] = [];
  const must = <T>(r: { status: number; body: T }, what: string, status = 200): T => {
    if (r.status !== status) throw new Error(`${name}: ${what} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  for (let i = 0; i < 2; i++) ids.user.push(await newUser(api, { tag: `${name}-user-${i}` }));
  ids.token.push(must(await api.post('/token', { user_id: ids.user[0], type: 'card_only' }), 'token').token);
  for (let i = 0; i < 6; i++) {
    const intent = must(await api.post('/intent', { direction: i % 2 ? 'cash_out' : 'cash_in', user_id: ids.user[0], amount: 1_000 + i, currency: 'USD', ...(i === 5 ? { approval_mode: 'manual' } : {}) }), 'intent');
    ids.intent.push(intent.id);
    const u = new URL(intent.url);
    sessions.push({ op: keys.id, id: intent.id, s: u.searchParams.get('s')! });
  }
  const paid = await payThroughPage(s, api, { direction: 'cash_in', user_id: ids.user[1], amount: 777 });
  ids.intent.push(paid.intent.id);
  for (let i = 0; i < 2; i++) ids.endpoint.push(must(await api.post('/webhook/endpoints', { url: `https://example.com/${name}/hook-${i}`, events: ['*'] }), 'endpoint', 201).id);
  const onboarded = must(await api.post('/sendcash/onboarding', { webhook_url: `https://example.com/${name}/sendcash` }), 'onboarding');
  const { createHmac } = await import('node:crypto');
  for (let i = 0; i < 3; i++) {
    const reference = `${name}-ref-${i}`;
    const body = { publicKey: onboarded.public_key, userId: 'user_42', paymentReference: reference, amount: '100.23', destinationAccountNumber: '0690000031', destinationBankCode: '044' };
    const signature = createHmac('sha256', onboarded.secret_key).update(`user_42:${reference}:10023:0690000031:044`).digest('hex');
    const t = must(await client(base).post('/sendcash/charges', { ...body, signature }), 'charge', 201);
    ids.transfer.push(t.id);
    payers.push({ op: keys.id, id: t.id, t: new URL(t.payerUrl).searchParams.get('t')! });
  }
  ids.endpoint.push(onboarded.endpoint_id);
  const events = must(await api.get('/events?limit=100'), 'events');
  ids.event.push(...events.data.map((e: { id: string }) => e.id).slice(0, 6));
  if (!ids.event.length) throw new Error(`${name}: no events to target`);
  return { keys, api, ids, sessions, payers, publicKey: onboarded.public_key, secretKey: onboarded.secret_key };
}

beforeAll(async () => {
  const A = await populate(await newOperator(s, 'Victim Casino'), 'victim');
  const B = await populate(await newOperator(s, 'Fuzz Casino'), 'fuzz');
  const sink = await newOperator(s, 'Sink Casino');
  world = {
    own: { operatorId: B.keys.id, sandboxKey: B.keys.sandbox, productionKey: B.keys.production, ids: B.ids, sessions: B.sessions, payers: B.payers, publicKey: B.publicKey, secretKey: B.secretKey },
    other: { operatorId: A.keys.id, sandboxKey: A.keys.sandbox, productionKey: A.keys.production, ids: A.ids, publicKey: A.publicKey, secretKey: A.secretKey },
    sinkKeys: Object.fromEntries(SINK_ROUTES.map((r) => [r, sink.sandbox])),
  };
  foreignStrings = [A.keys.id, A.keys.sandbox, A.keys.production, A.publicKey, A.secretKey, ...Object.values(A.ids).flat(), ...A.sessions.map((x) => x.s), ...A.payers.map((x) => x.t)];
  ownIdsSet = new Set(Object.values(B.ids).flat());
  counter = await rowCounter(s.running.deps.db);
});

/* ------------------------------------------------------------------------------------------------------------------
 * Judging one answer
 * ---------------------------------------------------------------------------------------------------------------- */

interface Violation {
  property: string;
  route: string;
  cls: string;
  detail: string;
  status: number | 'none';
  problem: string;
  /** What the answer said: its code, or a body excerpt. */
  answer: string;
  request: string;
  run: number;
}

const violations: Violation[] = [];
interface Stat { sent: number; reached: number; statuses: Record<string, number> }
const stats: Record<string, Record<string, Stat>> = {};

function describeRequest(r: RawRequest): string {
  const auth = r.headers?.authorization;
  const hdrs = Object.entries(r.headers ?? {}).filter(([k]) => k !== 'authorization').map(([k, v]) => `${k}: ${excerpt(String(v), 40)}`);
  return `${r.method} ${excerpt(r.path, 120)}${auth === undefined ? ' [no auth]' : ''}${hdrs.length ? ` {${hdrs.join('; ')}}` : ''}${r.body ? ` body(${r.body.length} B): ${excerpt(r.body.toString('latin1'), 100)}` : ''}`;
}

function answerOf(res: RawResponse): string {
  const j = res.json as any;
  if (isObj(j) && isObj(j.error) && typeof j.error.code === 'string') return `code ${j.error.code}: ${excerpt(String(j.error.message ?? ''), 80)}`;
  if (isObj(j) && Array.isArray(j.errors)) return `errors: ${excerpt(JSON.stringify(j.errors), 100)}`;
  return `${String(res.headers['content-type'] ?? 'no content-type')} ${excerpt(res.text, 120) || '(empty body)'}`;
}

const requestText = (r: RawRequest) => `${r.path}\n${JSON.stringify(r.headers ?? {})}\n${r.body?.toString('latin1') ?? ''}`;
const BODY_ID_FIELDS = ['user_id', 'token', 'intent_id'];

/** Does this request, made with a key other than B's sandbox key, point at one of B's sandbox objects (path or body id)? */
function targetsOwnObjectWithOtherKey(c: Case): boolean {
  const auth = String(c.req.headers?.authorization ?? '');
  const otherKey = [world.other.sandboxKey, world.other.productionKey, world.own.productionKey].some((k) => auth === `Bearer ${k}`);
  if (!otherKey) return false;
  const url = c.route.split(' ')[1]!;
  if (url.startsWith('/pay/') || url.startsWith('/sendcash/pay/') || isGraphql({ url }) || url === '/sendcash/charges') return false;
  const segments = c.req.path.split('?')[0]!.split('/').map((x) => { try { return decodeURIComponent(x); } catch { return x; } });
  if (idKind(url) && segments.some((x) => ownIdsSet.has(x))) return true;
  let body: unknown;
  try { body = c.req.body ? JSON.parse(c.req.body.toString('utf8')) : undefined; } catch { body = undefined; }
  return isObj(body) && BODY_ID_FIELDS.some((f) => typeof body[f] === 'string' && ownIdsSet.has(body[f]));
}

/** Every problem with one answer; [] when it is fine. */
export function judge(c: Case, o: Outcome, opts: { foreign?: boolean } = {}): { problem: string; answer: string }[] {
  if (!o.ok) return [{ problem: `no answer: ${o.error}`, answer: '-' }];
  const r = o.res;
  const out: { problem: string; answer: string }[] = [];
  // The route that answers: this one, or the route of the same URL for the method sent (GET /graphql sent as a POST).
  const answering = `${c.req.method} ${c.route.split(' ')[1]}`;
  const ex = EXCEPTIONS.filter((e) => routeMatches(e, answering) && e.status(r.status));
  const excused = ex.some((e) => e.accepts(r));
  if (r.status >= 500 && !excused) out.push({ problem: `a ${r.status}`, answer: answerOf(r) });
  else if (!(r.status >= 200 && r.status < 300) && !is4xx(r.status) && !excused) out.push({ problem: `an unexpected status ${r.status}`, answer: answerOf(r) });
  else if (is4xx(r.status) && !excused) {
    const shape = errorShape(r);
    const strict = ex.find((e) => !e.errorShapeAccepted);
    // The HTTP layer answers before any route is chosen (a 431, or HTTP it cannot parse): the error shape, on every path.
    const httpLayer = c.transport || r.status === 431;
    if (strict && httpLayer) { if (shape) out.push({ problem: `not the error shape (an answer of the HTTP layer): ${shape}`, answer: answerOf(r) }); }
    else if (strict) out.push({ problem: `not ${strict.answer}${shape === null ? ' (it is the Cashwire error shape)' : ''}`, answer: answerOf(r) });
    else if (shape) out.push({ problem: `not the error shape: ${shape}`, answer: answerOf(r) });
  }
  if (opts.foreign && r.status >= 200 && r.status < 300) out.push({ problem: `another tenant's or environment's object served (${r.status})`, answer: answerOf(r) });
  if (!opts.foreign && r.status >= 200 && r.status < 300 && targetsOwnObjectWithOtherKey(c)) out.push({ problem: `an object of operator B's sandbox served to another key (${r.status})`, answer: answerOf(r) });
  // Leaks: operator A's ids, keys and tokens in an answer to a request that neither names them nor carries A's key.
  const sent = requestText(c.req);
  if (!sent.includes(world.other.sandboxKey) && !sent.includes(world.other.productionKey)) {
    const leaked = foreignStrings.filter((x) => r.text.includes(x) && !sent.includes(x));
    if (leaked.length) out.push({ problem: `operator A's data in the answer: ${leaked.map((x) => excerpt(x, 24)).join(', ')}`, answer: answerOf(r) });
  }
  return out;
}

function stat(property: string, c: Case, o: Outcome) {
  const st = ((stats[property] ??= {})[c.route] ??= { sent: 0, reached: 0, statuses: {} });
  st.sent++;
  const status = o.ok ? String(o.res.status) : 'none';
  st.statuses[status] = (st.statuses[status] ?? 0) + 1;
  const ownMethod = c.req.method === c.route.split(' ')[0];
  const notFoundRoute = o.ok && isObj(o.res.json) && isObj((o.res.json as any).error) && (o.res.json as any).error.code === 'route_not_found';
  if (o.ok && ownMethod && !notFoundRoute) st.reached++;
}

function record(property: string, c: Case, o: Outcome, problems: { problem: string; answer: string }[], run: number) {
  for (const p of problems) {
    violations.push({ property, route: c.route, cls: c.cls, detail: c.detail, status: o.ok ? o.res.status : 'none', problem: p.problem, answer: p.answer, request: describeRequest(c.req), run });
  }
}

const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();
function polluted(): string | null {
  const now = Object.getOwnPropertyNames(Object.prototype).sort().join();
  if (now !== protoKeys) return `Object.prototype has new keys: ${now}`;
  if (({} as any).polluted !== undefined || ({} as any).isAdmin !== undefined) return 'Object.prototype.polluted is set';
  return null;
}

async function afterBatch(property: string, route: string, run: number): Promise<void> {
  const h = await send(base, { method: 'GET', path: '/healthz' }, { timeoutMs: TIMEOUT_MS });
  if (!h.ok || h.res.status !== 200) {
    violations.push({ property, route, cls: 'after-batch', detail: 'GET /healthz', status: h.ok ? h.res.status : 'none', problem: 'the server is not healthy after the batch', answer: h.ok ? answerOf(h.res) : h.error, request: 'GET /healthz', run });
  }
  const p = polluted();
  if (p) violations.push({ property, route, cls: 'after-batch', detail: '', status: 'none', problem: `prototype pollution: ${p}`, answer: '-', request: '-', run });
}

/* ------------------------------------------------------------------------------------------------------------------
 * Running a property
 * ---------------------------------------------------------------------------------------------------------------- */

type Mode = 'concurrent' | 'sequential-counted';

async function campaign(property: string, route: Route, arb: fc.Arbitrary<Case>, mode: Mode, extra?: (run: number) => Promise<void>): Promise<void> {
  let run = 0;
  let noAnswer = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(arb, { minLength: BATCH, maxLength: BATCH }), async (cases) => {
      const index = run++;
      if (noAnswer >= MAX_NO_ANSWER) return true; // recorded already: the route hangs, do not wait on it again
      const foreign = property === 'foreign';
      if (mode === 'concurrent') {
        const outcomes = await inFlight(IN_FLIGHT, cases.map((c) => async () => {
          const o = await send(base, c.req, { timeoutMs: TIMEOUT_MS });
          return { o, twin: c.twin ? await send(base, c.twin, { timeoutMs: TIMEOUT_MS }) : undefined };
        }));
        cases.forEach((c, i) => {
          const { o, twin } = outcomes[i]!;
          stat(property, c, o);
          if (!o.ok && o.error.startsWith('no answer')) noAnswer++;
          const problems = judge(c, o, { foreign });
          if (twin) {
            const sig = (x: Outcome) => (x.ok ? `${x.res.status} ${(x.res.json as any)?.error?.code ?? '-'}` : 'no answer');
            if (sig(o) !== sig(twin)) problems.push({ problem: `answers unlike a nonexistent id: ${sig(o)} for the other operator's object, ${sig(twin)} for an id that exists nowhere`, answer: o.ok ? answerOf(o.res) : '-' });
          }
          record(property, c, o, problems, index);
        });
      } else {
        let before = await counter.counts();
        for (const c of cases) {
          if (noAnswer >= MAX_NO_ANSWER) break;
          const o = await send(base, c.req, { timeoutMs: TIMEOUT_MS });
          stat(property, c, o);
          if (!o.ok) {
            if (o.error.startsWith('no answer')) noAnswer++;
            record(property, c, o, judge(c, o), index);
            await new Promise((r) => setTimeout(r, 200)); // whatever it still does must not be blamed on the next one
            before = await counter.counts();
            continue;
          }
          const after = await counter.counts();
          const rejected = is4xx(o.res.status) && !EXCEPTIONS.some((e) => e.notARejection && routeMatches(e, c.route) && c.req.method === c.route.split(' ')[0] && e.status(o.res.status) && e.accepts(o.res));
          const problems = judge(c, o);
          const changed = diffCounts(before, after);
          if (rejected && changed.length) problems.push({ problem: `a rejected request wrote rows: ${changed.join(', ')}`, answer: answerOf(o.res) });
          record(property, c, o, problems, index);
          before = after;
        }
      }
      await afterBatch(property, routeKey(route), index);
      if (extra) await extra(index);
      return true;
    }),
    // A failure here is the campaign's own (violations are collected, not thrown): no shrinking, which would resend.
    { seed: SEED, numRuns: RUNS, endOnFailure: true, interruptAfterTimeLimit: 50_000, markInterruptAsFailure: true },
  );
  if (noAnswer >= MAX_NO_ANSWER) {
    violations.push({ property, route: routeKey(route), cls: 'campaign', detail: '', status: 'none', problem: `stopped after ${noAnswer} requests got no answer within ${TIMEOUT_MS} ms`, answer: '-', request: '-', run: run - 1 });
  }
}

interface Group { property: string; route: string; cls: string; status: number | 'none'; problem: string; count: number; runs: number[]; examples: { detail: string; request: string; answer: string }[] }

/** Groups by property, route, input class, status and problem (numbers in the problem text folded). */
function grouped(vs: Violation[]): Group[] {
  const groups = new Map<string, Group>();
  for (const v of vs) {
    const problemKey = v.problem.replace(/\d+/g, 'N');
    const answerKey = v.answer.replace(/\d+/g, 'N').slice(0, 40);
    const k = [v.property, v.route, v.cls, v.status, problemKey, answerKey].join('|');
    const g = groups.get(k) ?? { property: v.property, route: v.route, cls: v.cls, status: v.status, problem: v.problem, count: 0, runs: [], examples: [] };
    g.count++;
    if (!g.runs.includes(v.run)) g.runs.push(v.run);
    if (g.examples.length < 2) g.examples.push({ detail: v.detail, request: v.request, answer: v.answer });
    groups.set(k, g);
  }
  return [...groups.values()];
}

function formatGroups(gs: Group[]): string {
  return gs.map((g) => `  [${g.property}] ${g.route} | ${g.cls} | status ${g.status} | ${g.problem} | ×${g.count} (runs ${g.runs.join(',')})\n`
    + g.examples.map((e) => `      ${e.detail ? `${e.detail} — ` : ''}${e.request}\n      → ${e.answer}`).join('\n')).join('\n');
}

function failIfAny(property: string, route: string) {
  const mine = violations.filter((v) => v.property === property && v.route === route);
  if (mine.length) {
    throw new Error(`${mine.length} violation(s) (seed ${SEED}, ${RUNS} runs of ${BATCH}; replay: CASHWIRE_FUZZ_SEED=${SEED} CASHWIRE_FUZZ_RUNS=${RUNS})\n${formatGroups(grouped(mine))}`);
  }
}

/* ------------------------------------------------------------------------------------------------------------------
 * The checker itself: it must flag what it should (so that the campaign cannot pass by judging nothing)
 * ---------------------------------------------------------------------------------------------------------------- */

describe('the checker', () => {
  const res = (status: number, body: string, ct = 'application/json; charset=utf-8'): Outcome => ({ ok: true, res: { status, headers: { 'content-type': ct }, body: Buffer.from(body), text: body, json: (() => { try { return JSON.parse(body); } catch { return undefined; } })(), ms: 1 } });
  const c = (route: string, path = '/x'): Case => ({ route, cls: 'test', detail: '', req: { method: route.split(' ')[0]!, path, headers: { authorization: `Bearer ${world.own.sandboxKey}` } } });
  it('accepts the documented shapes and flags everything else', () => {
    expect(judge(c('GET /user/:id'), res(400, '{"error":{"code":"invalid_length","message":"too long","field":"id"}}'))).toEqual([]);
    expect(judge(c('GET /user/:id'), res(200, 'anything'))).toEqual([]);
    expect(judge(c('GET /user/:id'), res(500, '{"error":{"code":"internal_error","message":"x"}}'))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), res(431, '{"error":"Request Header Fields Too Large","message":"Exceeded","statusCode":431}'))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), res(400, '{"error":{"code":"FST_ERR_BAD_URL","message":"x"}}'))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), res(400, '{"error":{"code":"bad","message":"x"},"statusCode":400}'))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), res(417, ''))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), res(400, '{"error":{"code":"bad","message":"x"}}', 'text/plain'))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), { ok: false, error: 'no answer within 4000 ms', ms: 4000 })).toHaveLength(1);
    expect(judge(c('POST /authorize'), res(401, '{"id":"intent_1","status":"declined"}'))).toEqual([]);
    expect(judge(c('POST /user'), res(401, '{"id":"intent_1","status":"declined"}'))).toHaveLength(1);
    expect(judge(c('GET /pay/:op/:id'), res(404, '<!doctype html><p>Payment session not found', 'text/html; charset=utf-8'))).toEqual([]);
    expect(judge(c('GET /user/:id'), res(404, '<!doctype html><p>nope', 'text/html; charset=utf-8'))).toHaveLength(1);
    expect(judge(c('POST /graphql'), res(400, '{"data":null,"errors":[{"message":"bad"}]}'))).toEqual([]);
    expect(judge(c('POST /graphql'), res(400, '{"error":{"code":"bad","message":"x"}}'))).toHaveLength(1);
    expect(judge(c('GET /healthz'), res(503, '{"status":"unavailable","error":{"code":"database_unavailable","message":"down"}}'))).toEqual([]);
    expect(judge(c('GET /user/:id'), res(200, `{"id":"${world.other.ids.user[0]}"}`))).toHaveLength(1);
    expect(judge(c('GET /user/:id', `/user/${world.own.ids.user[0]}`), res(200, '{}'))).toEqual([]);
    const otherKey: Case = { ...c('GET /user/:id', `/user/${world.own.ids.user[0]}`), req: { method: 'GET', path: `/user/${world.own.ids.user[0]}`, headers: { authorization: `Bearer ${world.other.sandboxKey}` } } };
    expect(judge(otherKey, res(200, '{}'))).toHaveLength(1);
    expect(judge(c('GET /user/:id'), res(404, '{"error":{"code":"user_not_found","message":"x"}}'), { foreign: true })).toEqual([]);
    expect(judge(c('GET /user/:id'), res(200, '{}'), { foreign: true })).toHaveLength(1);
  });

  it('the fixtures exist and the row counter sees every table', async () => {
    expect(ROUTES.length).toBeGreaterThan(40);
    expect(counter.tables).toEqual(expect.arrayContaining(['users', 'intents', 'events', 'endpoints', 'transfers', 'idempotency_keys', 'tokens']));
    expect(counter.tables).not.toContain('rate_counters');
    for (const k of ['user', 'intent', 'endpoint', 'event', 'transfer', 'token'] as Kind[]) {
      expect(world.own.ids[k].length, k).toBeGreaterThan(0);
      expect(world.other.ids[k].length, k).toBeGreaterThan(0);
    }
    const r = await send(base, { method: 'GET', path: `/user/${world.own.ids.user[0]}`, headers: { authorization: `Bearer ${world.own.sandboxKey}` } });
    expect(r.ok && r.res.status).toBe(200);
    // The counter sees a write: one user more, nothing else.
    const before = await counter.counts();
    await newUser(client(base, world.own.sandboxKey));
    expect(diffCounts(before, await counter.counts())).toEqual([`users ${before.users} -> ${before.users! + 1}`]);
  });
});

/* ------------------------------------------------------------------------------------------------------------------
 * The known-bad inputs of the bug report (they fail until the server is fixed)
 * ---------------------------------------------------------------------------------------------------------------- */

describe('known-bad inputs from the bug report', () => {
  const bearer = () => ({ authorization: `Bearer ${world.own.sandboxKey}` });
  function expectError(o: Outcome, status: number, code?: string) {
    expect(o.ok, o.ok ? '' : o.error).toBe(true);
    if (!o.ok) return;
    const what = `${o.res.status} ${String(o.res.headers['content-type'] ?? '')} ${excerpt(o.res.text, 300)}`;
    expect(o.res.status, what).toBe(status);
    expect(errorShape(o.res), what).toBeNull();
    if (code) expect((o.res.json as any).error.code, what).toBe(code);
  }

  for (const bad of ['%FF%FE', '%C3%28', '%u0000']) {
    it(`GET /user/${bad} with a valid key: 400 in the error shape`, async () => {
      expectError(await send(base, { method: 'GET', path: `/user/${bad}`, headers: bearer() }), 400);
    });
  }

  it('GET /user/<101 characters>: a syntactically fine id (IdParams allows 128) that does not exist: 404 user_not_found, not 414', async () => {
    expectError(await send(base, { method: 'GET', path: `/user/${'u'.repeat(101)}`, headers: bearer() }), 404, 'user_not_found');
  });

  it('GET /user/<200 characters>: 400 invalid_length, not 414 FST_ERR_MAX_PARAM_LENGTH', async () => {
    expectError(await send(base, { method: 'GET', path: `/user/${'u'.repeat(200)}`, headers: bearer() }), 400, 'invalid_length');
  });

  it('a 100 KB header: 431 in the error shape', async () => {
    expectError(await send(base, { method: 'GET', path: '/user/list', headers: { ...bearer(), 'x-pad': 'p'.repeat(100_000) } }), 431);
  });

  it('a 70 KB query string: 431 in the error shape', async () => {
    expectError(await send(base, { method: 'GET', path: `/user/list?cursor=${'c'.repeat(70_000)}`, headers: bearer() }), 431);
  });

  it('a valid POST /user body plus a field holding a 10,000-deep array (about 20 KB): 400 in the error shape, not 500', async () => {
    const text = JSON.stringify({ ...userBody(), deep: '@@DEEP@@' }).replace('"@@DEEP@@"', deepArray(10_000));
    expect(text.length).toBeGreaterThan(20_000);
    expect(text.length).toBeLessThan(65_536);
    const before = await counter.counts();
    expectError(await send(base, { method: 'POST', path: '/user', headers: { ...bearer(), 'content-type': 'application/json' }, body: Buffer.from(text) }), 400);
    expect(diffCounts(before, await counter.counts())).toEqual([]);
  });

  it('a 1 MB body streamed (chunked) by node:http without Expect: the 413 body_too_large is readable, no ECONNRESET before it', async () => {
    const o = await send(base, { method: 'POST', path: '/user', headers: { ...bearer(), 'content-type': 'application/json' }, body: Buffer.from('{"pad":"') },
      { timeoutMs: 10_000, stream: { total: 1024 * 1024, chunk: 16 * 1024 } });
    expectError(o, 413, 'body_too_large');
  });

  it('a 1 MB body with its Content-Length, written by node:http without Expect: the 413 body_too_large is readable', async () => {
    const o = await send(base, { method: 'POST', path: '/user', headers: { ...bearer(), 'content-type': 'application/json', 'content-length': String(1024 * 1024) }, body: Buffer.from('{"pad":"') },
      { timeoutMs: 10_000, stream: { total: 1024 * 1024, chunk: 16 * 1024 } });
    expectError(o, 413, 'body_too_large');
  });
});

/* ------------------------------------------------------------------------------------------------------------------
 * The generated properties, one per route
 * ---------------------------------------------------------------------------------------------------------------- */

describe('1. hostile requests to every route: no 5xx, no hang, the documented error shape, a healthy server', () => {
  for (const route of ROUTES) {
    it(routeKey(route), async () => {
      await campaign('hostile', route, caseArb(route, world), 'concurrent');
      failIfAny('hostile', routeKey(route));
    });
  }
});

describe('2. a rejected request writes no row (one request at a time, exact counts around each)', () => {
  for (const route of ROUTES) {
    it(routeKey(route), async () => {
      await campaign('rows', route, caseArb(route, world, 'deep'), 'sequential-counted');
      failIfAny('rows', routeKey(route));
    });
  }
});

describe("3. another tenant's and another environment's objects are never served nor changed", () => {
  const targets = ROUTES.filter((r) => {
    const body = (r.schema?.body as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
    const pathId = !!idKind(r.url) && r.url.includes(':id') && !r.url.startsWith('/pay/') && !r.url.startsWith('/sendcash/pay/');
    return pathId || ['user_id', 'token', 'intent_id'].some((k) => k in body);
  });
  it('has targets', () => {
    expect(targets.length).toBeGreaterThan(15);
  });
  for (const route of targets) {
    it(routeKey(route), async () => {
      const arb = foreignCaseArb(route, world);
      expect(arb, 'a route with an id must have foreign cases').toBeDefined();
      const digest = await tenantDigest(s.running.deps.db, world.other.operatorId);
      await campaign('foreign', route, arb!, 'concurrent', async (run) => {
        const now = await tenantDigest(s.running.deps.db, world.other.operatorId);
        const changed = Object.keys(digest).filter((t) => digest[t] !== now[t]);
        if (changed.length) {
          violations.push({ property: 'foreign', route: routeKey(route), cls: 'after-batch', detail: '', status: 'none', problem: `operator A's rows changed: ${changed.join(', ')}`, answer: '-', request: '-', run });
          Object.assign(digest, now);
        }
      });
      failIfAny('foreign', routeKey(route));
    });
  }
});

/* ------------------------------------------------------------------------------------------------------------------
 * Coverage: the campaign really sent requests to every route, and some got answered by the route itself
 * ---------------------------------------------------------------------------------------------------------------- */

describe('coverage', () => {
  it('every route of the table got its requests in properties 1 and 2, and answers from the route itself', () => {
    const missing: string[] = [];
    for (const route of ROUTES) {
      const k = routeKey(route);
      for (const p of ['hostile', 'rows']) {
        const st = stats[p]?.[k];
        if (!st || st.sent < RUNS * BATCH * 0.5) missing.push(`${p} ${k}: sent ${st?.sent ?? 0}`);
        if (!st || st.reached === 0) missing.push(`${p} ${k}: no answer from the route itself`);
      }
    }
    expect(missing).toEqual([]);
    const twoXX = Object.values(stats.hostile ?? {}).reduce((n, st) => n + Object.entries(st.statuses).filter(([x]) => x.startsWith('2')).reduce((m, [, v]) => m + v, 0), 0);
    expect(twoXX, 'some valid-ish requests must succeed').toBeGreaterThan(ROUTES.length);
  });
});

afterAll(async () => {
  const total = Object.values(stats).flatMap((byRoute) => Object.values(byRoute)).reduce((n, st) => n + st.sent, 0);
  const statuses: Record<string, number> = {};
  for (const st of Object.values(stats).flatMap((byRoute) => Object.values(byRoute))) for (const [k, v] of Object.entries(st.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const gs = grouped(violations);
  const header = `hostile campaign: seed ${SEED}, ${RUNS} run(s) of ${BATCH} per property and route, ${ROUTES.length} routes, ${total} generated requests; statuses ${JSON.stringify(statuses)}; ${violations.length} violations in ${gs.length} groups`;
  console.log(`${header}\n${formatGroups(gs)}`);
  if (process.env.CASHWIRE_FUZZ_REPORT) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(process.env.CASHWIRE_FUZZ_REPORT, JSON.stringify({ seed: SEED, runs: RUNS, routes: ROUTES.map(routeKey), stats, groups: gs }, null, 2));
  }
  await s.stop();
});
