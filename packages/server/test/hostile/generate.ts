/**
 * Generators of the hostile campaign: for one route of the server's route table, valid-ish requests built from the
 * route's own JSON schemas (params, querystring, headers, body), then one part of each made hostile. Every generated
 * case carries its input class (`area:variant`), so that failures can be grouped by what was sent.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import type { RawRequest } from './http.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Schema = Record<string, any>;

export interface Route {
  method: string;
  url: string;
  schema?: { params?: unknown; querystring?: unknown; body?: unknown; headers?: unknown; [k: string]: unknown };
}

export type Kind = 'user' | 'intent' | 'endpoint' | 'event' | 'transfer' | 'token';

/** What the generators know of the world: the campaign's operators, their keys and the objects they made. */
export interface World {
  /** The fuzzing operator (B): its own objects are the "valid-ish" ids. */
  own: {
    operatorId: string;
    sandboxKey: string;
    productionKey: string;
    ids: Record<Kind, string[]>;
    /** Hosted payment sessions: /pay/{op}/{id}?s={s}. */
    sessions: { op: string; id: string; s: string }[];
    /** Sendcash payer pages: /sendcash/pay/{op}/{id}?t={t}. */
    payers: { op: string; id: string; t: string }[];
    publicKey: string;
    secretKey: string;
  };
  /** The other operator (A): ids of its sandbox objects, and its keys. */
  other: { operatorId: string; sandboxKey: string; productionKey: string; ids: Record<Kind, string[]>; publicKey: string; secretKey: string };
  /** Routes that run with a throwaway operator's key (they could lock the fuzzing operator out): route key → Bearer key. */
  sinkKeys: Record<string, string>;
}

export interface Case {
  route: string;
  /** The input class: `area:variant`. */
  cls: string;
  /** Where and what, for the report. */
  detail: string;
  req: RawRequest;
  /** The request is not valid HTTP, or too large for the HTTP layer: it is answered before any route is chosen. */
  transport?: boolean;
  /** The same request with the other tenant's id replaced by an id that exists nowhere: it must get the same answer. */
  twin?: RawRequest;
}

export const routeKey = (r: Pick<Route, 'method' | 'url'>) => `${r.method} ${r.url}`;
export const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export const isHtmlPage = (r: Pick<Route, 'method' | 'url'>) => r.method === 'GET' && /^\/(sendcash\/)?pay\/:op\/:id$/.test(r.url);
export const isGraphql = (r: Pick<Route, 'url'>) => r.url === '/graphql';

export function idKind(url: string): Kind | undefined {
  if (url.startsWith('/user/')) return 'user';
  if (url.startsWith('/intent/') || url.startsWith('/simulate/intent/') || url.startsWith('/pay/')) return 'intent';
  if (url.startsWith('/webhook/endpoints/')) return 'endpoint';
  if (url.startsWith('/events/')) return 'event';
  if (url.startsWith('/sendcash/transfers/') || url.startsWith('/simulate/transfer/') || url.startsWith('/sendcash/pay/')) return 'transfer';
  return undefined;
}

const paramNames = (url: string) => [...url.matchAll(/:(\w+)/g)].map((m) => m[1]!);

/* ----------------------------------------------------------------------------------------------------------------
 * Hostile values
 * ------------------------------------------------------------------------------------------------------------- */

/** Percent-encodings that do not decode to valid UTF-8, or decode to something a path should not hold. */
export const BAD_PERCENT = ['%FF%FE', '%C3%28', '%u0000', '%00', '%', '%2', '%ZZ', '%ED%A0%80', '%F4%90%80%80', '%C0%AF', '%C0%80', '%E2%82',
  '%2F', '%2e%2e', '%5C', '%0A', '%0D%0A', '%20', '%25', 'a%00b', '%EF%BB%BF', '%E2%80%AE'];
/** Raw bytes 0x80-0xFF in a path (latin1 characters become single bytes on the wire): invalid UTF-8. */
const RAW_BYTES = ['\xff\xfe', '\xc3\x28', '\x80', '\xe9t\xe9', '\xed\xa0\x80', 'user_\xff'];
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__'];
const SPECIAL = ["' OR '1'='1", '1; DROP TABLE users; --', '${7*7}', '{{7*7}}', '<script>alert(1)</script>', '../../etc/passwd', '\u202egnp.exe',
  '\u{1F984}', 'null', 'undefined', 'NaN', 'true', '0', '-1', '1e309', ' ', '\t', '\r\n', 'é', 'ß'.repeat(40), '\uFFFF', '\uFEFF'];
const FORMAT_BREAKERS = ['not-an-email', 'javascript:alert(1)', 'http://169.254.169.254/latest/meta-data/', 'file:///etc/passwd', 'https://user:pass@example.com/',
  '//example.com', 'http://[::1]/', 'https://ex ample.com', 'http://', 'https://example.com:99999/', 'gopher://example.com', '2026-02-30', '9999-99-99',
  '0000-00-00', '2026-13-01T00:00:00Z', '+275760-09-13T00:00:00.001Z', '1e999', '+12', '  ', 'USD ', 'usd', 'CASH_IN', 'cash_in\u0000'];
const LENGTHS = [0, 1, 63, 64, 65, 100, 101, 127, 128, 129, 200, 256, 1001, 4000, 9000];

/** A string of `n` id-like characters. */
const idOf = (n: number) => ('x_' + 'a1b2c3d4e5'.repeat(Math.ceil(n / 10) + 1)).slice(0, n);

/** 10,000 nested arrays: 20 KB of JSON text. */
export const deepArray = (n = 10_000) => '['.repeat(n) + ']'.repeat(n);
/** `n` nested objects: 6 bytes a level. */
export const deepObject = (n = 5_000) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

const GRAPHQL_VALID = [
  '{ getTransactions { transactions { id reference amount status createdAt } paging { total page pages } } }',
  'query Q($p: Int) { getTransactions(page: $p, status: Pending) { paging { total pages } } }',
  '{ getTransactions(from: "2026-01-01", to: "2026-12-31") { transactions { id } } }',
  '{ __typename }',
  '{ __schema { queryType { name } types { name kind } } }',
];
const GRAPHQL_HOSTILE = [
  '{', 'query {', '{ getTransactions { nope } }', 'subscription { x }', '{ getTransactions(page: 0) { paging { total } } }',
  '{ getTransactions(page: -1) { paging { total } } }', '{ getTransactions(page: 2147483647) { paging { total } } }',
  '{ getTransactions(page: 99999999999) { paging { total } } }', '{ getTransactions(from: "2026-02-30") { paging { total } } }',
  '{ getTransactions(from: "\u0000") { paging { total } } }', '{ getTransactions(status: Bogus) { paging { total } } }',
  'fragment A on Query { ...B } fragment B on Query { ...A } { ...A }',
  'mutation { initiateTransferRequest(input: {username: "u", sourceAccountNumber: "1", sourceUserId: "u", slug: "s", beneficiary: {name: "n", payoutType: thirdParty, reference: "r", destinationAccountNumber: "1", destinationBankCode: "1", amount: 1.001}}) }',
  '{ ' + Array.from({ length: 1500 }, (_, i) => `a${i}: __typename`).join(' ') + ' }',
  '{ __typename ' + '@include(if: true) '.repeat(1500) + '}',
  '{' + 'a{'.repeat(3_000) + 'b' + '}'.repeat(3_001),
  '{ getTransactions { ' + 'transactions { id } '.repeat(500) + '} }',
  '{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }',
  '"' + 'x'.repeat(30_000) + '"',
  '# only a comment',
  '{ getTransactions { transactions { id } } } { getTransactions { paging { total } } }',
];

/* ----------------------------------------------------------------------------------------------------------------
 * Valid-ish values from the route's schemas
 * ------------------------------------------------------------------------------------------------------------- */

const ALNUM = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789_'.split(''));
const alnum = (min: number, max: number) => fc.string({ unit: ALNUM, minLength: min, maxLength: Math.max(min, max) });
const iso = fc.constantFrom('2026-01-01T00:00:00Z', '2025-06-30T12:00:00.000Z', '2030-01-01T00:00:00Z', '2026-03-02');

function pick<T>(xs: T[], fallback: T): fc.Arbitrary<T> {
  return xs.length ? fc.constantFrom(...xs) : fc.constant(fallback);
}

/** Values by field name, for fields whose schema says only "a string": what the domain accepts. */
function hint(name: string, schema: Schema, w: World, route: Route): fc.Arbitrary<unknown> | undefined {
  if (schema.const !== undefined || schema.enum || schema.anyOf || schema.oneOf) {
    if (name === 'amount' && route.url === '/sendcash/charges') return fc.constantFrom(100.23, '100.23', 5000, '11.11', 22, '0.5');
    return undefined;
  }
  const type = schema.type;
  if (type === 'array' && name === 'events') return fc.constantFrom(['*'], ['intent.approved'], ['intent.approved', 'Payment.Status']);
  if (type === 'integer' && (name === 'create' || name === 'read')) return fc.integer({ min: 1_000_000, max: 2_000_000_000 });
  if (type !== 'string') return undefined;
  const own = w.own;
  switch (name) {
    case 'email': return fc.constantFrom('ada@example.com', 'grace.hopper+cw@example.org');
    case 'phone_number': return fc.constant('+12125550123');
    case 'date_of_birth': return fc.constantFrom('1990-12-10', '1970-01-01', '2000-02-29');
    case 'country': return fc.constant('US');
    case 'administrative_area': case 'state': return fc.constantFrom('NY', 'CA');
    case 'postal_code': return fc.constant('12207');
    case 'last4': return fc.constant('1234');
    case 'first': case 'last': case 'locality': case 'address_line_1': return fc.constantFrom('Ada', 'Lovelace', 'Albany', '1 Main St');
    case 'url': case 'redirect_url': case 'webhook_url': return fc.constantFrom('https://example.com/hook', 'https://merchant.example/return?x=1');
    case 'webhook_secret': return fc.constant('whsec_' + 'k'.repeat(40));
    case 'user_id': return fc.oneof({ weight: 4, arbitrary: pick(own.ids.user, 'user_none') }, { weight: 1, arbitrary: alnum(1, 20) });
    case 'userId': return fc.constantFrom('user_42', 'payer_7');
    case 'publicKey': return fc.constant(own.publicKey);
    case 'signature': return fc.constant('0'.repeat(64));
    case 'destinationAccountNumber': case 'sourceAccountNumber': return fc.constant('0690000031');
    case 'destinationBankCode': case 'sourceBankCode': return fc.constant('044');
    case 'paymentReference': case 'transactionReference': return alnum(6, 16).map((s) => `ref_${s}`);
    case 'since': case 'until': case 'created_at.after': case 'created_at.before': return iso;
    case 'token': return pick(own.ids.token, 'token_none');
    case 'intent_id': return pick(own.ids.intent, 'intent_none');
    case 'type': return fc.constantFrom('intent.approved', 'intent.created');
    case 'limit': return fc.constantFrom('1', '25', '100');
    case 'query': return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...GRAPHQL_VALID) }, { weight: 2, arbitrary: fc.constantFrom(...GRAPHQL_HOSTILE) });
    case 'operationName': return fc.constantFrom('Q', 'Nope');
    case 'variables': return fc.constantFrom('{}', '{"p":1}');
    case 's': return pick(own.sessions.map((x) => x.s), 'nosession');
    case 't': return pick(own.payers.map((x) => x.t), 'notoken');
    case 'op': return fc.oneof({ weight: 4, arbitrary: fc.constant(own.operatorId) }, { weight: 1, arbitrary: alnum(1, 20) });
    case 'x-idempotency-key': return alnum(8, 24).map((s) => `idem_${s}`);
  }
  return undefined;
}

/** A valid-ish value of `schema` (an ordinary JSON schema as TypeBox writes it), small. */
export function fromSchema(schema: unknown, name: string, w: World, route: Route, depth = 0): fc.Arbitrary<unknown> {
  const s = (schema ?? {}) as Schema;
  const h = hint(name, s, w, route);
  if (h) return h;
  if (s.const !== undefined) return fc.constant(s.const);
  if (Array.isArray(s.enum) && s.enum.length) return fc.constantFrom(...s.enum);
  const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (Array.isArray(alts) && alts.length) return fc.oneof(...alts.map((a) => fromSchema(a, name, w, route, depth)));
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.length > 1) return fc.oneof(...types.map((t) => fromSchema({ ...s, type: t }, name, w, route, depth)));
  switch (types[0]) {
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const required = new Set<string>((s.required ?? []) as string[]);
      if (depth > 4 || Object.keys(props).length === 0) return fc.constant({});
      const entries = Object.entries(props).map(([k, v]) => {
        const a = fromSchema(v, k, w, route, depth + 1);
        return [k, required.has(k) ? a : fc.option(a, { nil: undefined, freq: 2 })] as const;
      });
      return fc.record(Object.fromEntries(entries)).map((o) => Object.fromEntries(Object.entries(o as Record<string, unknown>).filter(([, v]) => v !== undefined)));
    }
    case 'array': {
      const min = Number(s.minItems ?? 0);
      return fc.array(fromSchema(s.items ?? {}, name, w, route, depth + 1), { minLength: min, maxLength: Math.max(min, Math.min(Number(s.maxItems ?? 3), 3)) });
    }
    case 'string': {
      const min = Number(s.minLength ?? 0);
      const max = Math.min(Number(s.maxLength ?? 24), min + 24);
      if (typeof s.pattern === 'string') {
        try {
          return fc.stringMatching(new RegExp(s.pattern)).filter((x) => x.length >= min && x.length <= Number(s.maxLength ?? Infinity));
        } catch {
          /* a pattern fast-check cannot generate from: plain strings */
        }
      }
      return alnum(min, max);
    }
    case 'integer': return fc.integer({ min: Math.max(Number(s.minimum ?? 0), -1e6), max: Math.min(Number(s.maximum ?? 1e6), Math.max(Number(s.minimum ?? 0), 0) + 1e6) });
    case 'number': return fc.double({ min: Math.max(Number(s.minimum ?? 0), -1e6), max: Math.min(Number(s.maximum ?? 1e6), 1e6), noNaN: true, noDefaultInfinity: true });
    case 'boolean': return fc.boolean();
    case 'null': return fc.constant(null);
  }
  return fc.constantFrom<unknown>('x', 1, true, null);
}

/** The sub-schema at a path of keys (object properties, array items, the object branch of a union), if known. */
export function schemaAt(schema: unknown, path: (string | number)[]): Schema | undefined {
  let s = schema as Schema | undefined;
  for (const k of path) {
    if (!s) return undefined;
    const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
    if (alts) s = alts.find((a) => (typeof k === 'number' ? a.type === 'array' : a.type === 'object')) ?? alts[0];
    s = typeof k === 'number' ? s?.items : s?.properties?.[k];
  }
  return s;
}

/* ----------------------------------------------------------------------------------------------------------------
 * The parts of a request, and how they go on the wire
 * ------------------------------------------------------------------------------------------------------------- */

export interface Parts {
  params: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, string>;
  /** A JSON value; undefined: no body. */
  body: unknown;
}

/** Raw JSON text or bytes spliced into a body where a placeholder string stands. */
type Raws = Map<string, Buffer>;
let rawSeq = 0;
function rawValue(raws: Raws, bytes: Buffer | string): string {
  const key = `@@hostile_raw_${rawSeq++}@@`;
  raws.set(key, typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes);
  return key;
}

export function encodeJson(value: unknown, raws: Raws = new Map()): Buffer {
  const text = JSON.stringify(value) ?? '';
  if (raws.size === 0) return Buffer.from(text, 'utf8');
  const out: Buffer[] = [];
  const re = /"(@@hostile_raw_\d+@@)"/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    out.push(Buffer.from(text.slice(last, m.index), 'utf8'), raws.get(m[1]!) ?? Buffer.from(m[0]));
    last = m.index! + m[0].length;
  }
  out.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(out);
}

function encodeQuery(q: Record<string, unknown>): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    for (const x of Array.isArray(v) ? v : [v]) out.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(x))}`);
  }
  return out.join('&');
}

interface Mod {
  cls: string;
  detail?: string;
  transport?: boolean;
  method?: string;
  /** Path params sent verbatim (already encoded, or raw bytes). */
  rawParams?: Record<string, string>;
  /** Rewrites the encoded query string. */
  query?: (q: string) => string;
  /** Header overrides; undefined removes the header. */
  headers?: Record<string, string | string[] | undefined>;
  /** The body as sent: a Buffer, null for none; or a rewrite of the JSON value. */
  body?: Buffer | null;
  mutate?: (value: unknown, raws: Raws) => unknown;
  noHost?: boolean;
}

export function authHeader(route: Route, w: World): string {
  if (isGraphql(route)) return 'Basic ' + Buffer.from(`${w.own.publicKey}:${w.own.secretKey}`).toString('base64');
  return `Bearer ${w.sinkKeys[routeKey(route)] ?? w.own.sandboxKey}`;
}

function build(route: Route, w: World, p: Parts, m: Mod): Case {
  const method = m.method ?? route.method;
  let path = route.url.replace(/:(\w+)/g, (_, n: string) => m.rawParams?.[n] ?? encodeURIComponent(p.params[n] ?? ''));
  let qs = encodeQuery(p.query);
  if (m.query) qs = m.query(qs);
  if (qs) path += `?${qs}`;
  const headers: Record<string, string | string[]> = { authorization: authHeader(route, w), ...p.headers };
  let body: Buffer | undefined;
  if (m.body !== undefined) body = m.body ?? undefined;
  else if (m.mutate) {
    const raws: Raws = new Map();
    body = encodeJson(m.mutate(p.body === undefined ? {} : structuredClone(p.body), raws), raws);
  } else if (p.body !== undefined) body = encodeJson(p.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  // Bytes 0x80-0xFF in the request line, or a request line and headers over Node's 16 KiB: the HTTP layer refuses it.
  const headBytes = path.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + [v].flat().join('').length + 4, 0);
  const transport = m.transport || /[\x80-\xff]/.test(path) || headBytes > 16_000;
  return { route: routeKey(route), cls: m.cls, detail: m.detail ?? '', req: { method, path, headers, body, ...(m.noHost ? { noHost: true } : {}) }, ...(transport ? { transport: true } : {}) };
}

const dropUndefined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** Signs a charge body as the merchant's server would, so that valid-ish charges get past the signature check. */
function signCharge(body: any, secretKey: string): any {
  if (!body || typeof body !== 'object') return body;
  const reference = body.paymentReference ?? body.transactionReference;
  const text = typeof body.amount === 'number' ? String(body.amount) : String(body.amount ?? '');
  const m = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m || !reference) return body;
  const kobo = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  const base = `${body.userId}:${reference}:${kobo}:${body.destinationAccountNumber}:${body.destinationBankCode}`;
  return { ...body, signature: createHmac('sha256', secretKey).update(base).digest('hex') };
}

/** Valid-ish parts: each from the route's schema, with the domain's values where the schema says only "string". */
export function validParts(route: Route, w: World): fc.Arbitrary<Parts> {
  const sc = route.schema ?? {};
  const kind = idKind(route.url);
  const idPool = kind ? w.own.ids[kind] : [];
  const paramArbs: Record<string, fc.Arbitrary<unknown>> = {};
  for (const n of paramNames(route.url)) {
    const ps = (sc.params as Schema | undefined)?.properties?.[n] ?? { type: 'string', minLength: 1, maxLength: 64 };
    paramArbs[n] = n === 'id'
      ? fc.oneof({ weight: 5, arbitrary: pick(idPool, 'none') }, { weight: 1, arbitrary: fromSchema(ps, 'id', w, route) })
      : fromSchema(ps, n, w, route);
  }
  const params = fc.record(paramArbs).map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)])));
  const qSchema = sc.querystring as Schema | undefined;
  let query: fc.Arbitrary<Record<string, unknown>> = qSchema ? (fromSchema(qSchema, '', w, route) as fc.Arbitrary<Record<string, unknown>>) : fc.constant({});
  if (route.url === '/sendcash/pay/:op/:id') query = pick(w.own.payers.map((x) => x.t), 'notoken').map((t) => ({ t }));
  const hSchema = sc.headers as Schema | undefined;
  let headers: fc.Arbitrary<Record<string, string>> = hSchema ? (fromSchema(hSchema, '', w, route) as fc.Arbitrary<Record<string, string>>) : fc.constant({});
  let body: fc.Arbitrary<unknown> = sc.body ? fromSchema(sc.body, '', w, route) : fc.constant(undefined);
  if (isGraphql(route)) {
    // A GraphQL request always has a query: the schema leaves every field optional.
    const q = hint('query', { type: 'string' }, w, route)!;
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });
    const operationName = opt(fc.constantFrom<string | null>('Q', 'Nope', null));
    if (route.method === 'GET') {
      query = fc.record({ query: q, variables: opt(fc.constant('{"p":1}')), operationName, persisted: opt(fc.boolean()) }).map(dropUndefined);
    } else {
      body = fc.record({
        query: q, variables: opt(fc.constant({ p: 1 })), operationName, persisted: opt(fc.boolean()),
        extensions: opt(fc.constantFrom<object>({}, { persistedQuery: { version: 1, sha256Hash: 'ab'.repeat(32) } })),
      }).map(dropUndefined);
    }
    headers = fc.option(fc.constantFrom('0'.repeat(64), 'sig', 's'.repeat(2_000)), { nil: undefined })
      .map((sig): Record<string, string> => (sig === undefined ? {} : { 'x-transfers-request-signature': sig }));
  }
  if (route.method === 'POST' && route.url === '/sendcash/charges') body = body.map((b) => signCharge(b, w.own.secretKey));
  let parts: fc.Arbitrary<Parts> = fc.record({ params, query, headers, body }).map((p) => ({ ...p, query: p.query ?? {}, headers: p.headers ?? {} }));
  // The hosted pages and their decisions: often a real session, so that some requests reach the decision logic.
  if (route.url.startsWith('/pay/:op/:id') && w.own.sessions.length) {
    parts = fc.oneof(parts, fc.tuple(fc.constantFrom(...w.own.sessions), parts).map(([x, p]) => ({
      ...p, params: { op: x.op, id: x.id }, query: route.method === 'GET' ? { ...p.query, s: x.s } : p.query,
      body: p.body && typeof p.body === 'object' ? { ...(p.body as object), s: x.s } : p.body,
    })));
  }
  if (route.url.startsWith('/sendcash/pay/:op/:id') && w.own.payers.length) {
    parts = fc.oneof(parts, fc.tuple(fc.constantFrom(...w.own.payers), parts).map(([x, p]) => ({
      ...p, params: { op: x.op, id: x.id }, query: route.method === 'GET' ? { t: x.t } : p.query,
      body: p.body && typeof p.body === 'object' ? { ...(p.body as object), t: x.t } : p.body,
    })));
  }
  return parts;
}

/* ----------------------------------------------------------------------------------------------------------------
 * Hostile modifications, by area
 * ------------------------------------------------------------------------------------------------------------- */

function paramMods(route: Route, w: World): fc.Arbitrary<Mod> | undefined {
  const names = paramNames(route.url);
  if (!names.length) return undefined;
  const foreign = Object.values(w.other.ids).flat();
  const value = fc.oneof(
    fc.constantFrom(...BAD_PERCENT).map((v) => ['bad-percent-encoding', v] as const),
    fc.constantFrom(...RAW_BYTES).map((v) => ['raw-non-utf8-bytes', v] as const),
    fc.constantFrom(...LENGTHS).map((n) => [n > 128 ? 'overlong-id' : 'length', idOf(n)] as const),
    fc.constantFrom(...PROTO_KEYS).map((v) => ['prototype-key', v] as const),
    fc.constantFrom(...SPECIAL, ...FORMAT_BREAKERS).map((v) => ['special-string', encodeURIComponent(v)] as const),
    fc.constantFrom(...(foreign.length ? foreign : ['none']), w.other.operatorId).map((v) => ['other-tenant-id', v] as const),
    fc.constantFrom('%E2%80%8B', '%EF%BF%BD', '%F0%9F%A6%84', encodeURIComponent('ключ'), 'a%2Fb', '..', '.', '~', "'", '*', '%2A').map((v) => ['unicode-or-path', v] as const),
  );
  return fc.tuple(fc.constantFrom(...names), value).map(([n, [variant, v]]) => ({
    cls: `param:${variant}`, detail: `:${n} = ${excerpt(v)}`, rawParams: { [n]: v },
  }));
}

function queryMods(route: Route): fc.Arbitrary<Mod> {
  const qSchema = route.schema?.querystring as Schema | undefined;
  const keys = Object.keys(qSchema?.properties ?? {});
  const key = keys.length ? fc.constantFrom(...keys) : fc.constantFrom('x', 'limit', 'cursor', 's', 't');
  const add = (cls: string, extra: string): Mod => ({ cls: `query:${cls}`, detail: excerpt(extra), query: (q) => (q ? `${q}&${extra}` : extra) });
  const values = ['abc', '0', '101', '-1', '1.5', '1e2', '99999999999999999999', '', 'not-a-date', '9999-99-99', '2026-02-30T25:61:00Z',
    '+275760-09-13T00:00:00.001Z', '%00', '%ED%A0%80', '%FF%FE', '%C3%28', '%u0000', 'true', 'null', '[]', '{}', '%5B%5D'];
  return fc.oneof(
    fc.tuple(key, fc.constantFrom(...values)).map(([k, v]) => ({ cls: 'query:bad-value', detail: `${k}=${v}`, query: (q: string) => [q.split('&').filter((x) => x && !x.startsWith(`${encodeURIComponent(k)}=`)).join('&'), `${encodeURIComponent(k)}=${v}`].filter(Boolean).join('&') })),
    fc.tuple(key, fc.constantFrom('1', 'a')).map(([k, v]) => add('repeated-key', `${encodeURIComponent(k)}=${v}&${encodeURIComponent(k)}=${v}2`)),
    fc.tuple(key, fc.constantFrom('[]', '[0]', '[a]')).map(([k, b]) => add('bracket-key', `${encodeURIComponent(k)}${b}=1`)),
    fc.constantFrom('__proto__=x', '__proto__[polluted]=yes', 'constructor[prototype][polluted]=yes', 'constructor=x', 'prototype=1', 'hasOwnProperty=1', 'toString=1')
      .map((x) => add('prototype-key', x)),
    fc.constantFrom('unknown_field=1', 'operator_id=other', 'environment=production', 'debug=true').map((x) => add('unknown-field', x)),
    fc.constantFrom('%FF=1', '%C3%28=1', 'a%00b=1', '\xff=\xfe', 'x=\xc3\x28', '%=%', '=', '==', '&&&', 'a=b=c', 'a').map((x) => add('bad-encoding-or-syntax', x)),
    fc.tuple(key, fc.constantFrom(129, 513, 1001, 5_000, 12_000)).map(([k, n]) => add('huge-value', `${encodeURIComponent(k)}=${'q'.repeat(n)}`)),
    fc.constantFrom(300, 1_500).map((n) => add('many-params', Array.from({ length: n }, (_, i) => `p${i}=1`).join('&'))),
    fc.constantFrom(20_000, 70_000).map((n) => ({ ...add('over-header-limit', `x=${'q'.repeat(n)}`), transport: true })),
  );
}

const latin1OfUtf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

function authMods(route: Route, w: World): fc.Arbitrary<Mod> {
  const v = (variant: string, value: string | undefined): Mod => ({ cls: `auth:${variant}`, detail: value === undefined ? '(none)' : excerpt(value), headers: { authorization: value } });
  const basic = (s: string) => 'Basic ' + Buffer.from(s, 'latin1').toString('base64');
  const common = [
    v('missing', undefined), v('empty', ''), v('scheme-only', 'Bearer'), v('wrong-key', 'Bearer sk_test_nope'),
    v('other-operator', `Bearer ${w.other.sandboxKey}`), v('other-environment', `Bearer ${w.own.productionKey}`),
    v('other-operator-production', `Bearer ${w.other.productionKey}`), v('huge', `Bearer ${'k'.repeat(8_000)}`),
    v('non-ascii-latin1', 'Bearer cl\xe9\xff'), v('non-ascii-utf8-bytes', latin1OfUtf8('Bearer ключ🔑')), v('non-ascii-latin1', `Bearer ${w.own.sandboxKey}\xa0`),
    v('odd-spacing', `bearer    ${w.own.sandboxKey}   `), v('two-tokens', `Bearer ${w.own.sandboxKey} ${w.other.sandboxKey}`),
    v('wrong-scheme', `Basic ${w.own.sandboxKey}`), v('wrong-scheme', basic(`${w.own.publicKey}:${w.own.secretKey}`)),
    v('prototype-key', 'Bearer __proto__'), v('sql', "Bearer ' OR '1'='1"),
    { cls: 'auth:duplicate-header', detail: 'two Authorization lines', headers: { authorization: [`Bearer ${w.other.sandboxKey}`, `Bearer ${w.own.sandboxKey}`] } } as Mod,
  ];
  const gql = isGraphql(route) ? [
    v('basic-wrong-password', basic(`${w.own.publicKey}:nope`)), v('basic-other-tenant-secret', basic(`${w.own.publicKey}:${w.other.secretKey}`)),
    v('basic-no-colon', basic(w.own.publicKey)), v('basic-invalid-base64', 'Basic !!!!'), v('basic-non-utf8', 'Basic ' + Buffer.from([0xff, 0xfe, 0x3a, 0xc3, 0x28]).toString('base64')),
    v('basic-empty', 'Basic '), v('basic-huge', basic(`${'p'.repeat(6_000)}:${'s'.repeat(6_000)}`)), v('basic-prototype-key', basic('__proto__:constructor')),
  ] : [];
  return fc.constantFrom(...common, ...gql);
}

function headerMods(route: Route): fc.Arbitrary<Mod> {
  const h = (variant: string, headers: Record<string, string | string[] | undefined>, detail?: string, transport = false): Mod =>
    ({ cls: `header:${variant}`, detail: detail ?? excerpt(JSON.stringify(headers)), headers, ...(transport ? { transport } : {}) });
  const list: Mod[] = [
    h('idempotency-key', { 'x-idempotency-key': '' }), h('idempotency-key', { 'x-idempotency-key': 'k'.repeat(256) }),
    h('idempotency-key', { 'x-idempotency-key': latin1OfUtf8('ключ') }), h('idempotency-key', { 'x-idempotency-key': '\x80\xff' }),
    h('idempotency-key', { 'x-idempotency-key': ['a', 'b'] }), h('idempotency-key', { 'x-idempotency-key': ' ' }),
    h('huge-header', { 'x-pad': 'p'.repeat(20_000) }, 'x-pad of 20,000 bytes', true), h('huge-header', { cookie: 'c'.repeat(10_000) }, 'cookie of 10,000 bytes'),
    h('many-headers', Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`x-h-${i}`, 'v'])), '150 extra headers'),
    h('expect', { expect: '100-continue-please' }), h('expect', { expect: '100-continue' }),
    h('content-length', { 'content-length': 'abc' }, undefined, true), h('content-length', { 'content-length': '-1' }, undefined, true),
    h('content-length', { 'content-length': '1', 'transfer-encoding': 'chunked' }, 'Content-Length and Transfer-Encoding', true),
    h('content-encoding', { 'content-encoding': 'gzip' }), h('content-encoding', { 'content-encoding': 'br, \xff' }),
    h('odd-values', { accept: '\xff\xfe', 'accept-charset': 'utf-7', 'x-forwarded-for': "' OR 1=1", 'x-request-id': '\x80' }),
    h('odd-values', { 'user-agent': latin1OfUtf8('Mozilla/5.0 ☃'), origin: 'null', referer: 'javascript:alert(1)' }),
    h('host', { host: '\xff\xfe' }), h('host', { host: 'evil.example:99999' }),
    { cls: 'header:no-host', detail: 'no Host header', noHost: true, transport: true },
  ];
  if (route.schema?.headers) list.push(h('prototype-key', { __proto__x: 'x', constructor: 'x' } as Record<string, string>));
  return fc.constantFrom(...list);
}

const CONTENT_TYPES: (string | undefined)[] = [undefined, '', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/json;charset=utf-8', 'APPLICATION/JSON', 'application/json, text/plain',
  'application/jsonp', 'application/vnd.api+json', ' application/json', 'application/json; charset="utf-8"; x=\xff', 'application/graphql', 'text/html', '*/*',
  'application/json\x80', 'application/xml', 'application/octet-stream'];

function contentTypeMods(): fc.Arbitrary<Mod> {
  return fc.constantFrom(...CONTENT_TYPES).map((ct) => ({ cls: 'content-type:wrong-or-missing', detail: ct === undefined ? '(none)' : JSON.stringify(ct), headers: { 'content-type': ct } }));
}

function methodMods(route: Route): fc.Arbitrary<Mod> {
  const others = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => m !== route.method);
  return fc.constantFrom(...others, 'FOO', 'TRACE', 'PROPFIND', 'M-SEARCH').map((m) => ({ cls: m === 'FOO' ? 'method:unknown' : 'method:other', detail: m, method: m, ...(m === 'FOO' ? { transport: true } : {}) }));
}

/** Every node of a JSON value, with its path. */
function nodes(v: unknown, path: (string | number)[] = [], out: { path: (string | number)[]; value: unknown }[] = []) {
  out.push({ path, value: v });
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, [...path, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) nodes(x, [...path, k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let o = root as any;
  for (const k of path.slice(0, -1)) o = o[k];
  o[path[path.length - 1]!] = value;
  return root;
}

/** An own enumerable property, whatever its name (`__proto__` too), as JSON.parse would make it. */
function defineKey(o: object, k: string, v: unknown) {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

const BODY_KINDS = ['wrong-type', 'boundary', 'big-number', 'huge-string', 'nul', 'lone-surrogate', 'invalid-utf8', 'special-string', 'deep-array',
  'deep-object', 'wide-array', 'prototype-key', 'unknown-field', 'missing-field', 'wrap'] as const;

/** Schema-aware values just outside what the field accepts. */
function boundaryValues(s: Schema | undefined): unknown[] {
  if (!s) return ['x', -1, null];
  const out: unknown[] = [];
  const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (alts) return [...alts.flatMap((a) => boundaryValues(a)).slice(0, 6), 'not_one_of_them', 'CASH_IN'];
  if (s.const !== undefined) out.push(typeof s.const === 'string' ? s.const.toUpperCase() + '_' : 'x', `${s.const} `);
  if (Array.isArray(s.enum)) out.push('not_in_enum');
  if (s.maxLength !== undefined) out.push('m'.repeat(Number(s.maxLength) + 1));
  if (s.minLength) out.push('m'.repeat(Number(s.minLength) - 1));
  if (s.minimum !== undefined) out.push(Number(s.minimum) - 1, Number(s.minimum) + 0.5);
  if (s.maximum !== undefined) out.push(Number(s.maximum) + 1);
  if (s.type === 'integer') out.push(1.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 63));
  if (s.maxItems !== undefined) out.push(Array.from({ length: Number(s.maxItems) + 1 }, () => '*'));
  if (s.minItems) out.push([]);
  if (s.type === 'boolean') out.push('true', 1);
  if (s.type === 'string') out.push(12, true);
  return out.length ? out : ['x', -1, null];
}

function bodyMutation(route: Route, w: World): fc.Arbitrary<Mod> {
  const root = route.schema?.body;
  return fc.record({ at: fc.nat(), kind: fc.constantFrom(...BODY_KINDS), n: fc.nat() }).map(({ at, kind, n }) => {
    let detail = '';
    const mutate = (value: unknown, raws: Raws): unknown => {
      const all = nodes(value);
      const objects = all.filter((x) => x.value && typeof x.value === 'object' && !Array.isArray(x.value));
      const target = all[at % all.length]!;
      const where = target.path.join('.') || '(root)';
      const choose = <T>(xs: readonly T[]) => xs[n % xs.length]!;
      const put = (v: unknown, what: string) => {
        detail = `${where} = ${what}`;
        return setAt(value, target.path, v);
      };
      switch (kind) {
        case 'wrong-type': { const v = choose([null, true, false, 0, -1, 1.5, '', 'text', [], {}, [1, 2], { a: 1 }]); return put(v, excerpt(JSON.stringify(v))); }
        case 'boundary': { const v = choose(boundaryValues(schemaAt(root, target.path))); return put(v, excerpt(JSON.stringify(v))); }
        case 'big-number': { const t = choose(['1e309', '-1e309', '9007199254740993', '123456789012345678901234567890', '-0', '1E2', '0.1e-400', '1.0000000000000000000001', '2147483648']); return put(rawValue(raws, t), t); }
        case 'huge-string': { const len = choose([300, 2_100, 5_000, 30_000, 60_000]); return put('h'.repeat(len), `a string of ${len} characters`); }
        case 'nul': { const v = choose(['a\u0000b', '\u0000', 'tail\u0000']); return put(v, JSON.stringify(v)); }
        case 'lone-surrogate': { const v = choose(['\ud800', 'a\udfff', 'x\ud83d', '\udc00\ud800']); return put(v, JSON.stringify(v)); }
        case 'invalid-utf8': {
          const b = choose([[0xff, 0xfe], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x80], [0xf4, 0x90, 0x80, 0x80]]);
          return put(rawValue(raws, Buffer.concat([Buffer.from('"ok'), Buffer.from(b), Buffer.from('"')])), `a string with raw bytes ${Buffer.from(b).toString('hex')}`);
        }
        case 'special-string': { const v = choose([...SPECIAL, ...FORMAT_BREAKERS]); return put(v, excerpt(JSON.stringify(v))); }
        case 'deep-array': case 'deep-object': {
          const raw = kind === 'deep-array' ? deepArray(10_000) : deepObject(5_000);
          const what = kind === 'deep-array' ? 'an array 10,000 deep' : 'an object 5,000 deep';
          // Half the time in a field of its own (unknown to the schema, so no type check stops it), else in place of a node.
          const o = objects[n % Math.max(1, objects.length)];
          if (n % 2 === 0 && o) {
            (o.value as Record<string, unknown>).nested = rawValue(raws, raw);
            detail = `${[...o.path, 'nested'].join('.')} = ${what}`;
            return value;
          }
          return put(rawValue(raws, raw), what);
        }
        case 'wide-array': return put(rawValue(raws, `[${'"*",'.repeat(12_000)}"*"]`), 'an array of 12,001 items');
        case 'prototype-key': {
          const o = (objects[n % Math.max(1, objects.length)]?.value ?? value) as object;
          const k = choose(['__proto__', 'constructor', 'prototype', '__proto__', 'toString', 'hasOwnProperty']);
          const v = k === 'constructor' ? { prototype: { polluted: 'yes' } } : k === 'prototype' ? { polluted: 'yes' } : k === '__proto__' ? { polluted: 'yes', isAdmin: true } : 'x';
          if (o && typeof o === 'object') defineKey(o, k, v);
          detail = `key ${k} in ${objects.find((x) => x.value === o)?.path.join('.') || '(root)'}`;
          return value && typeof value === 'object' ? value : Object.defineProperty({}, k, { value: v, enumerable: true });
        }
        case 'unknown-field': {
          const o = (objects[n % Math.max(1, objects.length)]?.value ?? value) as Record<string, unknown>;
          const [k, v] = choose<[string, unknown]>([['unknown_field', 1], ['operator_id', w.other.operatorId], ['environment', 'production'], ['id', 'user_forged'],
            ['status', 'approved'], ['amount_kobo', 1], ['is_admin', true], ['created_at', '2000-01-01T00:00:00Z']]);
          if (o && typeof o === 'object') o[k] = v;
          detail = `unknown ${k} = ${JSON.stringify(v)}`;
          return value && typeof value === 'object' ? value : { [k]: v };
        }
        case 'missing-field': {
          const o = objects[n % Math.max(1, objects.length)];
          const keys = o ? Object.keys(o.value as object) : [];
          if (!o || !keys.length) { detail = 'nothing to remove: {}'; return {}; }
          const k = keys[n % keys.length]!;
          delete (o.value as Record<string, unknown>)[k];
          detail = `without ${[...o.path, k].join('.')}`;
          return value;
        }
        case 'wrap': { const v = n % 2 ? [target.value] : { value: target.value }; return put(v, n % 2 ? 'wrapped in an array' : 'wrapped in an object'); }
      }
      return value;
    };
    const mod: Mod = { cls: `body:${kind}`, mutate: (v, raws) => mutate(v, raws) };
    Object.defineProperty(mod, 'detail', { get: () => detail, enumerable: true });
    return mod;
  });
}

function rawBodyMods(route: Route): fc.Arbitrary<Mod> {
  const b = (variant: string, body: Buffer, detail: string, headers?: Record<string, string | undefined>): Mod => ({ cls: `raw-body:${variant}`, detail, body, headers });
  const s = (variant: string, text: string, detail = excerpt(text)) => b(variant, Buffer.from(text, 'utf8'), detail);
  const sample = JSON.stringify({ name: 'x', amount: 1, url: 'https://example.com/é' });
  /** A JSON object of exactly `size` bytes. */
  const padded = (size: number) => `{"pad":"${'p'.repeat(size - 10)}"}`;
  const list: Mod[] = [
    b('empty', Buffer.alloc(0), '0 bytes'),
    ...['not json', '{', '{"a":', '}', "{'a':1}", '{a:1}', '[1,2,', 'nul', '{"a":1,}', '{"a":1}{"b":2}', '{"a":1} trailing', '0x10', 'NaN', 'Infinity',
      '--1', '"unterminated', '{"a":"\\x41"}', '{"a":"\\u12"}', '{"a":01}', '{"a":.5}', '{"a":+1}', '\u0000', '{"\u0000":1}'].map((t) => s('malformed-json', t)),
    ...['[]', 'null', '0', '"str"', 'true', '[{}]', '[{"query":"{ __typename }"},{"query":"{ __typename }"}]', '{}', '1e309'].map((t) => s('non-object', t)),
    b('bom', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(sample)]), 'UTF-8 BOM before the JSON'),
    b('utf16', Buffer.from(sample, 'utf16le'), 'the JSON in UTF-16LE'),
    b('utf16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(sample, 'utf16le')]), 'the JSON in UTF-16LE with a BOM', { 'content-type': 'application/json; charset=utf-16' }),
    b('latin1', Buffer.from(sample, 'latin1'), 'the JSON in latin1 (é as the single byte 0xE9)'),
    b('raw-nul-byte', Buffer.from('{"a":"x\u0000y"}', 'utf8'), 'a raw NUL byte inside a string'),
    b('invalid-utf8', Buffer.concat([Buffer.from('{"'), Buffer.from([0xff, 0xfe]), Buffer.from('":1}')]), 'raw bytes FF FE in a key'),
    s('duplicate-keys', '{"a":1,"a":2,"__proto__":{"polluted":"yes"},"__proto__":1}'),
    s('prototype-key', '{"__proto__":{"polluted":"yes","isAdmin":true},"constructor":{"prototype":{"polluted":"yes"}}}'),
    s('deep-array-root', deepArray(10_000), 'an array 10,000 deep at the root (20 KB)'),
    s('deep-object-root', deepObject(10_000), 'an object 10,000 deep at the root (60 KB)'),
    s('deep-mixed', '[{"a":'.repeat(4_000) + '1' + '}]'.repeat(4_000), 'arrays and objects 8,000 deep'),
    s('many-keys', `{${Array.from({ length: 4_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`, '4,000 keys'),
    s('whitespace', `${' '.repeat(60_000)}{}`, '60,000 spaces, then {}'),
    s('at-body-limit', padded(65_536), 'exactly 65,536 bytes'),
    s('over-body-limit', padded(65_537), '65,537 bytes'),
    s('over-body-limit', padded(70_000), '70,000 bytes'),
    s('over-body-limit', `${' '.repeat(70_000)}{}`, '70,000 bytes of whitespace'),
  ];
  if (isGraphql(route)) list.push(s('graphql-text', '{ __typename }', 'a GraphQL document, not JSON'));
  return fc.constantFrom(...list);
}

/* ----------------------------------------------------------------------------------------------------------------
 * One route's cases
 * ------------------------------------------------------------------------------------------------------------- */

/**
 * `all`: every area, the HTTP layer's included. `deep`: the areas whose requests get past the HTTP layer, the router and
 * authentication into validation and the handler (a valid-ish request with one field, param or query value wrong):
 * where a rejected request could have written something.
 */
export type Profile = 'all' | 'deep';

export function caseArb(route: Route, w: World, profile: Profile = 'all'): fc.Arbitrary<Case> {
  const parts = validParts(route, w);
  const hasBody = BODY_METHODS.has(route.method);
  const all = profile === 'all';
  const areas: { weight: number; arbitrary: fc.Arbitrary<Mod> }[] = [
    { weight: all ? 2 : 3, arbitrary: fc.constant<Mod>({ cls: 'valid-ish', detail: '' }) },
    { weight: all ? 2 : 3, arbitrary: queryMods(route) },
    { weight: all ? 2 : 1, arbitrary: authMods(route, w) },
  ];
  if (all) areas.push({ weight: 2, arbitrary: headerMods(route) }, { weight: 1, arbitrary: methodMods(route) });
  const pm = paramMods(route, w);
  if (pm) areas.push({ weight: 4, arbitrary: pm });
  if (hasBody) areas.push({ weight: all ? 6 : 9, arbitrary: bodyMutation(route, w) }, { weight: all ? 3 : 2, arbitrary: rawBodyMods(route) }, { weight: all ? 2 : 1, arbitrary: contentTypeMods() });
  else if (all) areas.push({ weight: 1, arbitrary: rawBodyMods(route).map((m) => ({ ...m, cls: `body-on-${route.method}:${m.cls.split(':')[1]}` })) });
  return fc.tuple(parts, fc.oneof(...areas)).map(([p, m]) => build(route, w, p, m));
}

/**
 * Requests of another tenant or environment at one of the other operator's objects: the other operator's (A's)
 * sandbox ids in the path or in an id field of the body, sent with B's keys or A's production key.
 */
export function foreignCaseArb(route: Route, w: World): fc.Arbitrary<Case> | undefined {
  const kind = idKind(route.url);
  const bodyIdFields = ['user_id', 'token', 'intent_id'];
  const bodyProps = Object.keys(((route.schema?.body as Schema | undefined)?.properties ?? {}) as object).filter((k) => bodyIdFields.includes(k));
  const pathTarget = kind && paramNames(route.url).includes('id') && !route.url.startsWith('/pay/') && !route.url.startsWith('/sendcash/pay/');
  if (!pathTarget && !bodyProps.length) return undefined;
  const keys = fc.constantFrom(
    ['other-operator', `Bearer ${w.own.sandboxKey}`], ['other-operator-production', `Bearer ${w.own.productionKey}`], ['other-environment', `Bearer ${w.other.productionKey}`],
  );
  const sameKind = kind ? w.other.ids[kind] : [];
  const anyForeign = Object.values(w.other.ids).flat();
  const id = fc.oneof({ weight: 4, arbitrary: pick(sameKind.length ? sameKind : anyForeign, 'none') }, { weight: 1, arbitrary: pick(anyForeign, 'none') });
  return fc.tuple(validParts(route, w), keys, id, fc.constantFrom(...(bodyProps.length ? bodyProps : ['']))).map(([p, [who, auth], foreignId, field]) => {
    const body = p.body && typeof p.body === 'object' ? { ...(p.body as object) } as Record<string, unknown> : p.body;
    let detail: string;
    let params = p.params;
    const nowhere = (id: string) => `${id.slice(0, Math.max(1, id.length - 6))}zz0zz0`;
    let twinParams = p.params;
    let twinBody = body;
    if (pathTarget) {
      params = { ...p.params, id: foreignId };
      twinParams = { ...p.params, id: nowhere(foreignId) };
      detail = `:id = ${foreignId}`;
    } else {
      const k = field;
      const pool = k === 'user_id' ? w.other.ids.user : k === 'token' ? w.other.ids.token : w.other.ids.intent;
      const target = pool[0] ?? foreignId;
      (body as Record<string, unknown>)[k] = target;
      twinBody = { ...(body as object), [k]: nowhere(target) };
      detail = `${k} = ${target}`;
    }
    const mod: Mod = { cls: `foreign:${who}`, detail, headers: { authorization: auth } };
    const c = build(route, w, { ...p, params, body }, mod);
    // Another operator's object must look exactly like one that does not exist (another environment's may say so).
    if (who !== 'other-environment') c.twin = build(route, w, { ...p, params: twinParams, body: twinBody }, mod).req;
    return c;
  });
}

export function excerpt(s: string, n = 60): string {
  const t = s.length > n ? `${s.slice(0, n)}…(${s.length})` : s;
  return t.replace(/[\u0000-\u001f\u007f-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
