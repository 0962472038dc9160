/**
 * The GraphQL API against hostile documents, over real HTTP, with a real Sendcash-onboarded operator: the fragment
 * bomb that froze the server (forty fragments, each spreading the previous one twice), documents built to defeat the
 * budget (cycles, aliases, inline-fragment nesting, operations, tokens, variables, directives, batches), bodies that
 * are not GraphQL at all, and the wall-clock budget. Every answer is a coded GraphQL error or the server's 4xx, never
 * a 5xx, and /healthz keeps answering.
 *
 * The server under test runs in a child process (Vite's module runner loads the TypeScript sources, as vitest does):
 * a server that freezes cannot freeze the test with it, so every request here has a client-side timeout and a
 * regression fails the test instead of hanging it. The child also serves the GraphQL routes alone with tiny limits
 * (same database and keys), for the budgets' boundaries and the wall-clock budget.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_URL } from './helpers.js';

const SERVER_DIR = fileURLToPath(new URL('..', import.meta.url));
/** Client-side timeout of every request: a frozen server fails the test. */
const TIMEOUT_MS = 10_000;

/** Tiny limits for the second server (the GraphQL routes alone). */
const TIGHT = { maxTokens: 80, maxNesting: 8, maxDepth: 3, maxFields: 10, maxSelections: 20, maxAliases: 3, maxOperations: 2, maxFragments: 3, maxVariables: 2, maxDirectives: 2, timeoutMs: 1_000 };

/** Runs in the child (cwd packages/server): the real server (startTestServer), an operator, and the tight server. */
const CHILD = /* js */ `
const { runnerImport } = await import('vite');
const load = async (p) => (await runnerImport(new URL(p, 'file://' + process.cwd() + '/').pathname, { configFile: false, logLevel: 'error', server: { hmr: false } })).module;
const h = await load('test/helpers.ts');
const s = await h.startTestServer();
const op = await h.newOperator(s, 'Hostile Probe Ltd');
const { graphqlRoutes } = await load('src/api/graphql.ts');
const tight = (await import('fastify')).default();
await tight.register(graphqlRoutes(s.running.deps, { pageSize: 3, limits: JSON.parse(process.env.GQL_TIGHT_LIMITS) }));
const tightUrl = await tight.listen({ port: 0, host: '127.0.0.1' });
let stopping;
const stop = () => (stopping ??= (async () => { await tight.close().catch(() => {}); await s.stop().catch(() => {}); process.exit(0); })());
process.on('message', (m) => { if (m === 'stop') void stop(); });
process.on('disconnect', () => void stop());
process.send({ url: s.url, tightUrl, apiKey: op.sandbox, databaseUrl: s.running.database.url });
`;

interface Server { url: string; tightUrl: string; apiKey: string; databaseUrl: string }
let child: ChildProcess;
let srv: Server;
let auth: string;
let childErr = '';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
let keys: { publicKey: string; secretKey: string };

beforeAll(async () => {
  child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    cwd: SERVER_DIR, env: { ...process.env, GQL_TIGHT_LIMITS: JSON.stringify(TIGHT) }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  child.stderr!.on('data', (d: Buffer) => { childErr += d.toString(); });
  srv = await new Promise<Server>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Server));
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}): ${childErr}`)));
  });
  // Onboarding, as a merchant does it: POST /sendcash/onboarding with the operator's API key.
  const res = await fetch(`${srv.url}/sendcash/onboarding`, {
    method: 'POST', headers: { authorization: `Bearer ${srv.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ webhook_url: 'http://127.0.0.1:9/sc' }), signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const on = (await res.json()) as { public_key: string; secret_key: string };
  expect(res.status, JSON.stringify(on)).toBe(200);
  keys = { publicKey: on.public_key, secretKey: on.secret_key };
  auth = basic(keys.publicKey, keys.secretKey);
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send('stop');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000); // a frozen server does not stop by itself
    await exited;
    clearTimeout(killer);
  }
  // A killed server could not drop its database.
  if (srv?.databaseUrl) {
    const name = new URL(srv.databaseUrl).pathname.slice(1);
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}, 60_000);

interface GqlBody { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[]; error?: { code: string; message: string } }
interface Answer { status: number; body: GqlBody; text: string }

async function send(body: string | Buffer | undefined, o: { url?: string; type?: string | null; authorization?: string; method?: string; query?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json', authorization: o.authorization ?? auth };
  if (o.type !== null) headers['content-type'] = o.type ?? 'application/json';
  const res = await fetch(`${o.url ?? srv.url}/graphql${o.query ?? ''}`, {
    method: o.method ?? 'POST', headers, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body), signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let parsed: GqlBody = {};
  try {
    parsed = JSON.parse(text) as GqlBody;
  } catch {
    /* checked by the caller */
  }
  return { status: res.status, body: parsed, text };
}

const gql = (query: unknown, extra: Record<string, unknown> = {}, o: Parameters<typeof send>[1] = {}) => send(JSON.stringify({ query, ...extra }), o);

async function healthz(): Promise<number> {
  const res = await fetch(`${srv.url}/healthz`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  await res.text();
  return res.status;
}

/** A refusal: the HTTP status, `data: null`, and every error with a message and a code (the first one `code`). */
function expectRefused(r: Answer, code: string | RegExp, status = 400) {
  expect(r.status, r.text).toBe(status);
  expect(r.body.data, r.text).toBeNull();
  expect(r.body.errors?.length, r.text).toBeGreaterThan(0);
  for (const e of r.body.errors!) {
    expect(typeof e.message, r.text).toBe('string');
    expect(typeof e.extensions?.code, r.text).toBe('string');
  }
  if (typeof code === 'string') expect(r.body.errors![0]!.extensions!.code, r.text).toBe(code);
  else expect(r.body.errors![0]!.extensions!.code, r.text).toMatch(code);
}

/** Whatever the answer, it is not a 5xx, it is JSON, and any error in it has a code. */
function expectSafe(r: Answer, what = '') {
  expect(r.status, `${what} ${r.text}`).toBeLessThan(500);
  expect(r.body, `${what} ${r.text}`).toBeTypeOf('object');
  for (const e of r.body.errors ?? []) expect(typeof e.extensions?.code, `${what} ${r.text}`).toBe('string');
  if (r.body.error) expect(r.body.error.code, `${what} ${r.text}`).toMatch(/^[a-z_]+$/);
}

const expectOk = (r: Answer) => {
  expect(r.status, r.text).toBe(200);
  expect(r.body.errors, r.text).toBeUndefined();
};

/** Forty fragments, each spreading the previous one twice: 2^40 fields once expanded, in 1.7 KB. */
function bomb(levels = 40, type = 'Paging', leaf = 'total', root = (f: string) => `{ getTransactions { paging { ...${f} } } }`) {
  const fragments = [`fragment F0 on ${type} { ${leaf} }`];
  for (let i = 1; i <= levels; i++) fragments.push(`fragment F${i} on ${type} { ...F${i - 1} ...F${i - 1} }`);
  return `${fragments.join(' ')} ${root(`F${levels}`)}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('GraphQL hardening: the fragment bomb', () => {
  it('is refused with a coded error, and /healthz answers while 8 of them are in flight', async () => {
    expect(bomb().length).toBeLessThan(1_800);
    const answers = await Promise.all([...range(8).map(() => gql(bomb())), healthz()]);
    const health = answers.pop();
    expect(health).toBe(200);
    expect(answers).toHaveLength(8);
    for (const r of answers as Answer[]) {
      // Forty spreads deep is over the nesting budget before a single field is counted.
      expectRefused(r, 'QUERY_TOO_DEEP');
      expect(r.body.errors![0]!.message).toBe('query nested too deeply: more than 32 levels of selections, fragments included');
    }
    // Twenty levels nest within the budget, and their 2^20 fields are over the cost limit, counted without expanding.
    const twenty = await gql(bomb(20));
    expectRefused(twenty, 'QUERY_TOO_COSTLY');
    expect(twenty.body.errors![0]!.message).toBe('query too costly: more than 200 fields selected');
    // And the server still answers real queries.
    const r = await gql('{ getTransactions { paging { total } } }');
    expectOk(r);
    expect(r.body.data).toEqual({ getTransactions: { paging: { total: 0 } } });
  });

  it('is refused under introspection too (where data fields do not count), as GET, and as application/graphql', async () => {
    expectRefused(await gql(bomb(40, '__Type', 'name', (f) => `{ __schema { types { ...${f} } } }`)), 'QUERY_TOO_DEEP');
    const intro = await gql(bomb(20, '__Type', 'name', (f) => `{ __schema { types { ...${f} } } }`));
    expectRefused(intro, 'QUERY_TOO_COSTLY');
    expect(intro.body.errors![0]!.message).toMatch(/selections once fragments are expanded/);
    const get = await send(undefined, { method: 'GET', type: null, query: `?query=${encodeURIComponent(bomb())}` });
    expectRefused(get, 'QUERY_TOO_DEEP');
    const raw = await send(bomb(20), { type: 'application/graphql' });
    expectRefused(raw, 'QUERY_TOO_COSTLY');
    // A fragment counts each time it is spread: eight levels (256 fields) are over the 200, seven (128) pass.
    const small = await gql(bomb(8));
    expectRefused(small, 'QUERY_TOO_COSTLY');
    expectOk(await gql(bomb(7))); // 128 fields
    expect(await healthz()).toBe(200);
  });
});

describe('GraphQL hardening: documents built to defeat the budget', () => {
  it('fragment cycles are refused, whether spread, under introspection, or unused', async () => {
    const two = await gql('{ getTransactions { paging { ...A } } } fragment A on Paging { ...B } fragment B on Paging { ...A }');
    expectRefused(two, 'FRAGMENT_CYCLE');
    expect(two.body.errors![0]!.message).toBe('fragment cycle: A → B → A');
    expectRefused(await gql('{ getTransactions { paging { ...A } } } fragment A on Paging { total ...A }'), 'FRAGMENT_CYCLE');
    expectRefused(await gql('{ __schema { types { ...T } } } fragment T on __Type { name ofType { ...T } }'), 'FRAGMENT_CYCLE');
    // Not spread from any operation: graphql-js's own NoFragmentCycles and NoUnusedFragments report it.
    const unused = await gql('{ __typename } fragment A on Paging { ...B } fragment B on Paging { ...A }');
    expectRefused(unused, 'GRAPHQL_VALIDATION_FAILED');
    expect(unused.body.errors!.map((e) => e.message).join(' ')).toMatch(/Cannot spread fragment "A" within itself/);
    expect(await healthz()).toBe(200);
  });

  it('wide aliases: 10,000 are over the body limit (413), 2,000 over the token budget, 101 over the alias budget; 100 pass', async () => {
    const aliases = (n: number) => `{ getTransactions { paging { ${range(n).map((i) => `a${i}: total`).join(' ')} } } }`;
    expectRefused(await gql(aliases(10_000)), 'PAYLOAD_TOO_LARGE', 413);
    const tokens = await gql(aliases(2_000));
    expectRefused(tokens, 'QUERY_TOO_LARGE');
    expect(tokens.body.errors![0]!.message).toBe('query too large: more than 5000 tokens');
    const many = await gql(aliases(101));
    expectRefused(many, 'TOO_MANY_ALIASES');
    expect(many.body.errors![0]!.message).toBe('too many aliases: more than 100 in one operation');
    const ok = await gql(aliases(100));
    expectOk(ok);
    expect((ok.body.data as { getTransactions: { paging: Record<string, number> } }).getTransactions.paging.a99).toBe(0);
    // Aliases inside a spread fragment count where it is spread; under introspection (where fields are not data, and
    // aliases multiply the executor's walk over the schema) at most 5.
    const types = (n: number) => `{ ${range(n).map((i) => `t${i}: __type(name: "Paging") { name fields { name } }`).join(' ')} }`;
    expectOk(await gql(types(5)));
    const intro = await gql(types(6));
    expectRefused(intro, 'TOO_MANY_ALIASES');
    expect(intro.body.errors![0]!.message).toBe('too many aliases in introspection: more than 5 on or under __schema and __type in one operation');
    expectRefused(await gql(`{ __schema { ${range(101).map((i) => `s${i}: queryType { name }`).join(' ')} } }`), 'TOO_MANY_ALIASES');
    expectRefused(await gql(`{ ${range(11).map((i) => `g${i}: getTransactions { paging { ...P } }`).join(' ')} } fragment P on Paging { ${range(9).map((i) => `p${i}: total`).join(' ')} }`), 'TOO_MANY_ALIASES');
    expect(await healthz()).toBe(200);
  });

  it('deep nesting through inline fragments, through fragments, and of brackets in values is refused before parsing', async () => {
    const inline = (n: number) => `{ getTransactions { paging { ${'... on Paging { '.repeat(n)} total ${'} '.repeat(n)} } } }`;
    expectOk(await gql(inline(20)));
    const deep = await gql(inline(40));
    expectRefused(deep, 'QUERY_TOO_DEEP');
    expect(deep.body.errors![0]!.message).toBe('query nested too deeply: more than 32 brackets open at once');
    expectRefused(await gql(inline(3_000)), 'QUERY_TOO_DEEP'); // 60 KB: what would exhaust a recursive parser's stack
    expectRefused(await gql(`{ ${'a { '.repeat(15_000)} }`), 'QUERY_TOO_DEEP');
    expectRefused(await gql(`{ getTransactions(page: ${'['.repeat(30_000)}) { paging { total } } }`), 'QUERY_TOO_DEEP');
    // Each fragment shallow, the chain deep: levels of selections are counted through fragments.
    const chain = [`fragment C0 on Paging { total }`, ...range(20).map((i) => `fragment C${i + 1} on Paging { ... on Paging { ...C${i} } }`)];
    const through = await gql(`{ getTransactions { paging { ...C20 } } } ${chain.join(' ')}`);
    expectRefused(through, 'QUERY_TOO_DEEP');
    expect(through.body.errors![0]!.message).toBe('query nested too deeply: more than 32 levels of selections, fragments included');
    expect(await healthz()).toBe(200);
  });

  it('fields with sub-selections repeated in one selection set (quadratic in graphql-js\'s overlap check) are refused past 10', async () => {
    const repeated = (n: number) => `{ __schema { ${'types { name } '.repeat(n)}} }`;
    expectOk(await gql(repeated(11))); // 10 repeats
    const over = await gql(repeated(12));
    expectRefused(over, 'TOO_MANY_REPEATED_FIELDS');
    expect(over.body.errors![0]!.message).toMatch(/more than 10 fields with sub-selections repeat a name already selected in the same selection set \(here "types"\)/);
    expectRefused(await gql(repeated(330)), 'TOO_MANY_REPEATED_FIELDS');
    // Nested: two of each at every level, through inline fragments too (graphql-js merges those into their parent).
    const nested = (d: number): string => (d === 0 ? 'name' : `ofType { ${nested(d - 1)} } ... on __Type { ofType { ${nested(d - 1)} } }`);
    expectRefused(await gql(`{ __type(name: "Paging") { ${nested(6)} } }`), 'TOO_MANY_REPEATED_FIELDS');
    // The ordinary case passes: the same root field twice, for different parts, merged by GraphQL.
    const merged = await gql('{ getTransactions { paging { total } } getTransactions { transactions { id } } }');
    expectOk(merged);
    expect(merged.body.data).toEqual({ getTransactions: { paging: { total: 0 }, transactions: [] } });
    expect(await healthz()).toBe(200);
  });

  it('many operations, fragments and variables in one document are refused', async () => {
    const ops = (n: number) => range(n).map((i) => `query Q${i} { __typename }`).join(' ');
    expectOk(await gql(ops(10), { operationName: 'Q9' }));
    expectRefused(await gql(ops(11), { operationName: 'Q0' }), 'TOO_MANY_OPERATIONS');
    expectRefused(await gql('{ __typename } '.repeat(2_000)), /TOO_MANY_OPERATIONS|QUERY_TOO_LARGE/);
    const frags = (n: number) => `{ getTransactions { paging { ${range(n).map((i) => `...F${i}`).join(' ')} } } } ${range(n).map((i) => `fragment F${i} on Paging { total }`).join(' ')}`;
    expectOk(await gql(frags(50)));
    expectRefused(await gql(frags(51)), 'TOO_MANY_FRAGMENTS');
    const vars = (n: number) => `query V(${range(n).map((i) => `$v${i}: Int`).join(', ')}) { getTransactions(page: $v0) { paging { page } } }`;
    expectRefused(await gql(vars(51)), 'TOO_MANY_VARIABLES');
    // Fifty declared are fine (graphql-js then reports the unused ones); thousands of values sent are ignored.
    expectRefused(await gql(vars(50)), 'GRAPHQL_VALIDATION_FAILED');
    const values = Object.fromEntries(range(4_000).map((i) => [`v${i}`, i + 1]));
    const r = await gql(vars(1), { variables: values });
    expectOk(r);
    expect(r.body.data).toEqual({ getTransactions: { paging: { page: 1 } } });
    expect(await healthz()).toBe(200);
  });

  it('a huge document: 1 MB is over the body limit; 60 KB of whitespace or comments is no work; 60 KB of tokens is refused', async () => {
    expectRefused(await gql(`{ __typename ${' '.repeat(1_000_000)}}`), 'PAYLOAD_TOO_LARGE', 413);
    expectRefused(await send(Buffer.alloc(1_000_000, 0x20)), 'PAYLOAD_TOO_LARGE', 413);
    expectOk(await gql(`{ __typename ${' '.repeat(60_000)}}`));
    expectOk(await gql(`{ __typename ${'# a comment\n'.repeat(4_500)}}`));
    expectRefused(await gql(`{ ${'__typename '.repeat(5_500)}}`), 'QUERY_TOO_LARGE');
    expectRefused(await gql(`{ getTransactions(page: ${'1'.repeat(60_000)}) { paging { total } } }`), /GRAPHQL_VALIDATION_FAILED|BAD_USER_INPUT/);
    expect(await healthz()).toBe(200);
  });

  it('directives repeated thousands of times are refused (body limit, then the directive budget, then graphql-js)', async () => {
    const dirs = (n: number) => `{ getTransactions { paging { total ${'@include(if: true) '.repeat(n)}} } }`;
    expectRefused(await gql(dirs(5_000)), 'PAYLOAD_TOO_LARGE', 413);
    expectRefused(await gql(dirs(3_000)), 'TOO_MANY_DIRECTIVES'); // the lexer stops at the 51st, long before token 5,001
    expectRefused(await gql(dirs(51)), 'TOO_MANY_DIRECTIVES');
    const twice = await gql(dirs(2));
    expectRefused(twice, 'GRAPHQL_VALIDATION_FAILED');
    expect(twice.body.errors![0]!.message).toMatch(/can only be used once/);
    expectOk(await gql(dirs(1)));
    expect(await healthz()).toBe(200);
  });

  it('batched arrays are refused (batching is off), whatever their length', async () => {
    for (const batch of [[], [{ query: '{ __typename }' }], range(1_000).map(() => ({ query: '{ __typename }' })), [bomb(), bomb()]]) {
      expectRefused(await send(JSON.stringify(batch)), 'BATCHING_NOT_SUPPORTED');
    }
    expectRefused(await send(JSON.stringify(range(5_000).map(() => ({ query: bomb(4) })))), 'PAYLOAD_TOO_LARGE', 413);
    expect(await healthz()).toBe(200);
  });

  it('bodies that are not JSON, not an object, or without a query get a coded 4xx', async () => {
    const cases: [string, string | Buffer | undefined, string | null, string | undefined, number][] = [
      ['text/plain', '{ __typename }', 'text/plain', 'UNSUPPORTED_MEDIA_TYPE', 415],
      ['form', 'query=%7B__typename%7D', 'application/x-www-form-urlencoded', 'UNSUPPORTED_MEDIA_TYPE', 415],
      ['no content type', Buffer.from('{"query":"{ __typename }"}'), null, 'UNSUPPORTED_MEDIA_TYPE', 415],
      ['not JSON', '{ __typename }', 'application/json', 'MALFORMED_JSON', 400],
      ['truncated JSON', '{"query": "{ __typ', 'application/json', 'MALFORMED_JSON', 400],
      ['empty', '', 'application/json', 'EMPTY_BODY', 400],
      ['a JSON string', '"{ __typename }"', 'application/json', 'BAD_REQUEST', 400],
      ['a JSON number', '42', 'application/json', 'BAD_REQUEST', 400],
      ['JSON null', 'null', 'application/json', 'BAD_REQUEST', 400],
      ['no query', '{}', 'application/json', 'BAD_REQUEST', 400],
      ['an empty query', '{"query": ""}', 'application/json', 'BAD_REQUEST', 400],
      ['__proto__ and constructor keys', '{"__proto__": {"query": 1}, "constructor": {"prototype": {}}, "query": "{ __typename }"}', 'application/json', undefined, 200],
      ['an empty application/graphql', '', 'application/graphql', 'BAD_REQUEST', 400],
    ];
    for (const [what, body, type, code, status] of cases) {
      const r = await send(body, { type });
      expectSafe(r, what);
      expect(r.status, `${what}: ${r.text}`).toBe(status);
      if (code) expect(r.body.errors?.[0]?.extensions?.code, `${what}: ${r.text}`).toBe(code);
    }
    expect(await healthz()).toBe(200);
  });

  it('a query that is not a string, or variables and operationName of the wrong type, get BAD_REQUEST', async () => {
    const ast = { kind: 'Document', definitions: [{ kind: 'OperationDefinition', operation: 'query', selectionSet: { kind: 'SelectionSet', selections: [] } }] };
    for (const query of [42, true, ['{ __typename }'], { query: '{ __typename }' }, ast]) {
      const r = await gql(query);
      expectRefused(r, 'BAD_REQUEST');
      expect(r.body.errors![0]!.message).toMatch(/query must be string/);
    }
    expectRefused(await gql('{ __typename }', { variables: [1, 2] }), 'BAD_REQUEST');
    expectRefused(await gql('{ __typename }', { variables: 'x' }), 'BAD_REQUEST');
    expectRefused(await gql('{ __typename }', { operationName: 7 }), 'BAD_REQUEST');
    // A JSON AST sent as the query text is not taken for a document (Mercurius would try JSON.parse on a syntax error).
    const { parse } = await import('graphql');
    const asText = await gql(JSON.stringify(parse('{ __typename }', { noLocation: true })));
    expectRefused(asText, 'GRAPHQL_PARSE_FAILED');
    const unknown = await gql('{ __typename }', { operationName: 'Nope' });
    expectRefused(unknown, 'GRAPHQL_VALIDATION_FAILED');
    expect(await healthz()).toBe(200);
  });

  it('invalid UTF-8, NUL and lone surrogates, in the body, the query text, GraphQL strings and variables', async () => {
    const q = (s: string) => `{ getTransactions(from: "${s}") { paging { total } } }`;
    const bytes = (prefix: string, raw: number[], suffix: string) => Buffer.concat([Buffer.from(prefix), Buffer.from(raw), Buffer.from(suffix)]);
    // Invalid UTF-8 is read as U+FFFD: inside a GraphQL string it is a bad date, outside one a syntax error.
    const inString = await send(bytes('{"query": "{ getTransactions(from: \\"', [0xff, 0xfe, 0xc3], '\\") { paging { total } } }"}'));
    expect(inString.status, inString.text).toBe(200);
    expect(inString.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expectRefused(await send(bytes('{"query": "{ ', [0xff, 0xc0, 0x80], ' }"}')), 'GRAPHQL_PARSE_FAILED');
    expectRefused(await send(bytes('{"query": ', [0xff], '}')), 'MALFORMED_JSON');
    // NUL: refused by the server's JSON reading wherever it is; a raw NUL byte is not JSON.
    expectRefused(await gql(q('\u0000')), 'INVALID_CHARACTER');
    expectRefused(await gql('{ __typename \u0000 }'), 'INVALID_CHARACTER');
    expectRefused(await gql(q('2030-01-01'), { variables: { x: 'a\u0000b' } }), 'INVALID_CHARACTER');
    expectRefused(await send(bytes('{"query": "{ __typename ', [0], ' }"}')), 'MALFORMED_JSON');
    // Lone surrogates: in the query text (raw or as a GraphQL \\u escape) a syntax error; in variables a bad value.
    expectRefused(await gql(q('\ud800')), 'GRAPHQL_PARSE_FAILED');
    expectRefused(await gql(q('\\uDC00')), 'GRAPHQL_PARSE_FAILED');
    expectRefused(await gql('{ __typename \udfff }'), 'GRAPHQL_PARSE_FAILED');
    const variable = await gql('query ($f: Date) { getTransactions(from: $f) { paging { total } } }', { variables: { f: '\ud800' } });
    expect(variable.status, variable.text).toBe(200);
    expect(variable.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(await healthz()).toBe(200);
  });

  it('GET: the same budget; a mutation is 405; an over-long URL is refused by HTTP itself', async () => {
    expectRefused(await send(undefined, { method: 'GET', type: null, query: `?query=${encodeURIComponent('{ getTransactions { paging { ...A } } } fragment A on Paging { ...A }')}` }), 'FRAGMENT_CYCLE');
    const ok = await send(undefined, { method: 'GET', type: null, query: `?query=${encodeURIComponent('{ getTransactions { paging { total } } }')}` });
    expectOk(ok);
    const mutation = await send(undefined, { method: 'GET', type: null, query: `?query=${encodeURIComponent('mutation { initiateTransferRequest(input: {username: "u", sourceAccountNumber: "1", sourceUserId: "u", slug: "s", beneficiary: {name: "n", payoutType: thirdParty, reference: "r", destinationAccountNumber: "1", destinationBankCode: "1", amount: 1}}) }')}` });
    expectRefused(mutation, 'METHOD_NOT_ALLOWED', 405);
    expectRefused(await send(undefined, { method: 'GET', type: null, query: '?query=%7B__typename%7D&variables=%7Bnot-json' }), 'BAD_REQUEST');
    const long = await send(undefined, { method: 'GET', type: null, query: `?query=${'%20'.repeat(20_000)}` });
    expect(long.status).toBe(431);
    expect(await healthz()).toBe(200);
  });

  it('the standard introspection query of GraphQL clients passes, with every option', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    for (const options of [{}, { descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true }]) {
      const r = await gql(getIntrospectionQuery(options));
      expectOk(r);
      expect((r.body.data as { __schema: { types: unknown[] } }).__schema.types.length).toBeGreaterThan(10);
    }
  });

  it('a seeded random sweep of mangled documents: never a 5xx, always coded errors, /healthz 200', async () => {
    let seed = 0x5eed;
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const pieces = ['{', '}', '(', ')', '[', ']', '...', '... on Paging', '...F0', '...F1', 'fragment F0 on Paging', 'fragment F1 on Paging', 'total', 'a: total',
      'getTransactions', 'paging', 'transactions', '__schema', '__type(name: "Paging")', 'types', 'name', '@include(if: true)', '@skip(if: $v)',
      'query', 'mutation', '($v: Boolean!)', '"str"', '"""block"""', '$v', ':', '=', '!', '|', '&', '#c\n', '\u0000', '\ud800', '\uffff', 'é', '0x1', '1e999', '-0'];
    const templates = [bomb(12), bomb(3), '{ getTransactions { paging { ...F0 } } } fragment F0 on Paging { total }', '{ __schema { types { name fields { name } } } }'];
    for (let i = 0; i < 150; i++) {
      let doc = templates[rnd(templates.length)]!;
      for (let k = 0, edits = 1 + rnd(6); k < edits; k++) {
        const at = rnd(doc.length + 1);
        const piece = pieces[rnd(pieces.length)]!;
        doc = rnd(3) === 0 ? doc.slice(0, at) + doc.slice(at + rnd(8)) : doc.slice(0, at) + ` ${piece.repeat(1 + rnd(3) * rnd(40))} ` + doc.slice(at);
      }
      expectSafe(await gql(doc, rnd(2) ? { variables: { v: rnd(2) === 0 } } : {}), doc.slice(0, 200));
    }
    expect(await healthz()).toBe(200);
  });
});

describe('GraphQL hardening: each budget at its limit passes and one over is refused (the GraphQL routes with tiny limits)', () => {
  const tight = (query: string, extra: Record<string, unknown> = {}) => gql(query, extra, { url: srv.tightUrl });

  it('fields, aliases, depth, selections', async () => {
    const typenames = (n: number) => `{ ${range(n).map((i) => `t${i}: __typename`).join(' ')} }`;
    expectOk(await tight(typenames(3)));
    expectRefused(await tight(typenames(4)), 'TOO_MANY_ALIASES');
    expectOk(await tight('{ getTransactions { paging { total page pages } transactions { id reference amount status } } }')); // 10 fields
    const costly = await tight('{ getTransactions { paging { total page pages } transactions { id reference amount status createdAt } } }');
    expectRefused(costly, 'QUERY_TOO_COSTLY');
    expect(costly.body.errors![0]!.message).toBe('query too costly: more than 10 fields selected');
    // Depth 3 is the schema's deepest, and the limit. Selections under introspection: 2 + 10 spreads × (spread + field) = 22.
    expectOk(await tight('{ getTransactions { transactions { id } } }'));
    const spreads = await tight(`{ __schema { queryType { ${range(10).map(() => '...N').join(' ')} } } } fragment N on __Type { name }`);
    expectRefused(spreads, 'QUERY_TOO_COSTLY');
    expect(spreads.body.errors![0]!.message).toBe('query too costly: more than 20 selections once fragments are expanded');
    expectOk(await tight(`{ __schema { queryType { ${range(8).map(() => '...N').join(' ')} } } } fragment N on __Type { name }`)); // 2 + 16 = 18
  });

  it('tokens, nesting, operations, fragments, variables, directives', async () => {
    expectRefused(await tight(`{ ${'__typename '.repeat(79)}}`), 'QUERY_TOO_LARGE');
    expectRefused(await tight(`{ getTransactions { paging { ${'... on Paging { '.repeat(6)} total ${'} '.repeat(6)} } } }`), 'QUERY_TOO_DEEP');
    expectOk(await tight(`{ getTransactions { paging { ${'... on Paging { '.repeat(5)} total ${'} '.repeat(5)} } } }`));
    expectOk(await tight('query A { __typename } query B { __typename }', { operationName: 'B' }));
    expectRefused(await tight('query A { __typename } query B { __typename } query C { __typename }', { operationName: 'B' }), 'TOO_MANY_OPERATIONS');
    const frags = (n: number) => `{ getTransactions { paging { ${range(n).map((i) => `...F${i}`).join(' ')} } } } ${range(n).map((i) => `fragment F${i} on Paging { total }`).join(' ')}`;
    expectOk(await tight(frags(3)));
    expectRefused(await tight(frags(4)), 'TOO_MANY_FRAGMENTS');
    expectOk(await tight('query ($a: Int, $b: Int) { getTransactions(page: $a) { paging { page } } t: getTransactions(page: $b) { paging { page } } }', { variables: { a: 1, b: 2 } }));
    expectRefused(await tight('query ($a: Int, $b: Int, $c: Int) { getTransactions(page: $a) { paging { page } } }'), 'TOO_MANY_VARIABLES');
    expectOk(await tight('{ getTransactions { paging { total @include(if: true) page @skip(if: false) } } }'));
    expectRefused(await tight('{ getTransactions { paging { total @include(if: true) page @skip(if: false) pages @skip(if: false) } } }'), 'TOO_MANY_DIRECTIVES');
  });

  it('the wall-clock budget: a request whose resolver outlives it gets QUERY_TIMEOUT; /healthz answers meanwhile', async () => {
    // Hold the transfers table so that the resolver's query waits.
    const lock = new pg.Client({ connectionString: srv.databaseUrl });
    await lock.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE transfers IN ACCESS EXCLUSIVE MODE');
      const [r, health] = await Promise.all([tight('{ getTransactions { paging { total } } }'), healthz()]);
      expect(health).toBe(200);
      expect(r.status, r.text).toBe(200);
      expect(r.body.data).toBeNull();
      expect(r.body.errors![0]!.extensions!.code).toBe('QUERY_TIMEOUT');
      expect(r.body.errors![0]!.message).toMatch(/longer than its budget of 1000 ms/);
    } finally {
      await lock.query('ROLLBACK');
      await lock.end();
    }
    expectOk(await tight('{ getTransactions { paging { total } } }'));
  });
});

describe('GraphQL hardening: HTTP Basic', () => {
  it('a password of the right character length with a non-ASCII character (another byte length) is 401 UNAUTHENTICATED, not 500', async () => {
    const s = keys.secretKey;
    for (const pass of [`${s.slice(0, -1)}é`, `é${s.slice(1)}`, `${s.slice(0, -2)}\u00ff\u00ff`, `${s.slice(0, -2)}\u{1F600}`, `${s.slice(0, 10)}€${s.slice(11)}`]) {
      expect(pass.length).toBe(s.length);
      expect(Buffer.byteLength(pass)).toBeGreaterThan(Buffer.byteLength(s));
      const r = await gql('{ getTransactions { paging { total } } }', {}, { authorization: basic(keys.publicKey, pass) });
      expect(r.status, r.text).toBe(401);
      expect(r.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    // Non-ASCII user names, raw Latin-1 bytes and a NUL in the header do not fail either.
    for (const authorization of [basic(`${keys.publicKey}é`, s), basic('ü', 'ü'), `Basic ${Buffer.from([0xff, 0x3a, 0xfe]).toString('base64')}`, basic(keys.publicKey, `${s}\u0000`)]) {
      const r = await gql('{ __typename }', {}, { authorization });
      expect(r.status, r.text).toBe(401);
      expect(r.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    expectOk(await gql('{ __typename }'));
    // The URL spelt otherwise reaches the same route, and the same authentication.
    for (const path of ['/graphql?x=1', '/%67raphql', '/graphql/', '//graphql', '/GRAPHQL']) {
      const res = await fetch(`${srv.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ getTransactions { paging { total } } }' }), signal: AbortSignal.timeout(TIMEOUT_MS) });
      const text = await res.text();
      expect([401, 404], `${path} ${text}`).toContain(res.status);
      expect(text, path).not.toMatch(/"total"/);
    }
  });
});

describe('GraphQL hardening: the pre-pass alone (graphql-budget)', () => {
  it('each budget at its limit passes and one over throws its code; nothing but a BudgetError is ever thrown', async () => {
    const { checkQuery, resolveLimits, BudgetError } = await import('../src/api/graphql-budget.js');
    const huge = 1_000_000;
    const wide = resolveLimits({
      maxTokens: huge, maxNesting: 100, maxDepth: 100, maxFields: huge, maxSelections: huge, maxAliases: huge, maxIntrospectionAliases: huge,
      maxRepeatedFields: huge, maxOperations: huge, maxFragments: huge, maxVariables: huge, maxDirectives: huge,
    });
    const code = (f: () => unknown) => {
      try {
        f();
        return 'passed';
      } catch (err) {
        expect(err).toBeInstanceOf(BudgetError);
        return (err as InstanceType<typeof BudgetError>).extensions.code;
      }
    };
    const docs: [keyof typeof wide, string, (n: number) => string][] = [
      ['maxTokens', 'QUERY_TOO_LARGE', (n) => `{ ${'x '.repeat(n - 2)}}`],
      ['maxNesting', 'QUERY_TOO_DEEP', (n) => `{ ${'... on Q { '.repeat(n - 1)} x ${'} '.repeat(n - 1)}}`],
      ['maxDepth', 'QUERY_TOO_DEEP', (n) => `{ ${'a { '.repeat(n - 1)} x ${'} '.repeat(n - 1)}}`],
      ['maxFields', 'QUERY_TOO_COSTLY', (n) => `{ ${'x '.repeat(n)}}`],
      ['maxSelections', 'QUERY_TOO_COSTLY', (n) => `{ __schema { ${'x '.repeat(n - 1)}} }`],
      ['maxAliases', 'TOO_MANY_ALIASES', (n) => `{ ${range(n).map((i) => `a${i}: x`).join(' ')} }`],
      ['maxIntrospectionAliases', 'TOO_MANY_ALIASES', (n) => `{ __schema { ${range(n).map((i) => `a${i}: x`).join(' ')} } }`],
      ['maxRepeatedFields', 'TOO_MANY_REPEATED_FIELDS', (n) => `{ ${'a { x } '.repeat(n + 1)}}`],
      ['maxOperations', 'TOO_MANY_OPERATIONS', (n) => range(n).map((i) => `query Q${i} { x }`).join(' ')],
      ['maxFragments', 'TOO_MANY_FRAGMENTS', (n) => `{ ${range(n).map((i) => `...F${i}`).join(' ')} } ${range(n).map((i) => `fragment F${i} on Q { x }`).join(' ')}`],
      ['maxVariables', 'TOO_MANY_VARIABLES', (n) => `query (${range(n).map((i) => `$v${i}: Int`).join(' ')}) { x }`],
      ['maxDirectives', 'TOO_MANY_DIRECTIVES', (n) => `{ ${range(n).map(() => 'x @include(if: true)').join(' ')} }`],
    ];
    for (const [limit, expected, doc] of docs) {
      for (const n of [5, 17]) {
        const limits = { ...wide, [limit]: n };
        expect(code(() => checkQuery(doc(n), limits)), `${limit} ${n}`).toBe('passed');
        expect(code(() => checkQuery(doc(n + 1), limits)), `${limit} ${n + 1}`).toBe(expected);
      }
    }
    // Fragment figures are memoised, and the count stops at the first budget: a 40-level bomb costs 40 fragment visits.
    expect(code(() => checkQuery(bomb(40), resolveLimits()))).toBe('QUERY_TOO_DEEP');
    expect(code(() => checkQuery(bomb(20), resolveLimits()))).toBe('QUERY_TOO_COSTLY');
    expect(code(() => checkQuery(bomb(20, 'Q', 'x', (f) => `{ ...${f} }`), { ...wide, maxFields: 2 ** 20, maxSelections: 2 ** 22 }))).toBe('passed');
    expect(code(() => checkQuery(bomb(20, 'Q', 'x', (f) => `{ ...${f} }`), { ...wide, maxFields: 2 ** 20 - 1, maxSelections: 2 ** 22 }))).toBe('QUERY_TOO_COSTLY');
    expect(code(() => checkQuery('{ ...A } fragment A on Q { ...B } fragment B on Q { ...C } fragment C on Q { ...A }', wide))).toBe('FRAGMENT_CYCLE');
    // Any text: a GraphQL error with a code, never an exception of another kind.
    let seed = 7;
    const alphabet = '{}()[]!$&|:=@."\\\n #\u0000\ud800éaq0.-e...on fragment query';
    for (let i = 0; i < 2_000; i++) {
      let s = '';
      for (let k = 0, len = seed % 60; k < len; k++) {
        seed = (seed * 48_271) % 2_147_483_647;
        s += alphabet[seed % alphabet.length];
      }
      const c = code(() => checkQuery(s, resolveLimits()));
      expect(typeof c, JSON.stringify(s)).toBe('string');
    }
  });

  it('the limits: defaults, nesting following depth, and refusal of nonsense values', async () => {
    const { resolveLimits, DEFAULT_GRAPHQL_LIMITS } = await import('../src/api/graphql-budget.js');
    expect(resolveLimits()).toEqual(DEFAULT_GRAPHQL_LIMITS);
    expect(resolveLimits({ maxDepth: 20 }).maxNesting).toBe(60);
    expect(resolveLimits({ maxDepth: 20, maxNesting: 40 }).maxNesting).toBe(40);
    expect(resolveLimits({ maxDepth: undefined }).maxDepth).toBe(6);
    expect(() => resolveLimits({ maxFields: 0 })).toThrow(/maxFields/);
    expect(() => resolveLimits({ timeoutMs: Number.NaN })).toThrow(/timeoutMs/);
  });
});
