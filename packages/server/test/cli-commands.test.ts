/**
 * The CLI's remote commands (trigger, events, endpoints) and `operator list`, run as a child process
 * (`node packages/server/bin/cashwire.js …`) against a test server, as a developer's terminal would.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verify } from '@cashwire/webhooks';
import { client, newOperator, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/cashwire.js', import.meta.url));
const LINKED = `${ROOT}node_modules/.bin/cashwire`;

interface Run { code: number; stdout: string; stderr: string }

function run(args: string[], env: Record<string, string | undefined> = {}, bin = BIN): Promise<Run> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
    // A child's Sendcash keys come from the test, never from the machine.
    for (const k of ['CASHWIRE_SENDCASH_SECRET_KEY', 'CASHWIRE_SENDCASH_PUBLIC_KEY']) if (!(k in env)) delete childEnv[k];
    execFile(process.execPath, [bin, ...args], { env: childEnv, cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let s: TestServer;
let keys: Keys;
let api: Api;
let cli: (args: string[], env?: Record<string, string | undefined>) => Promise<Run>;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'CLI Casino');
  api = client(s.url, keys.sandbox);
  cli = (args, env = {}) => run(args, { CASHWIRE_API_URL: s.url, CASHWIRE_API_KEY: keys.sandbox, DATABASE_URL: undefined, ...env });
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

const TRIGGERABLE = [
  'intent.approved', 'intent.declined', 'intent.canceled', 'intent.settled', 'refund.approved', 'refund.declined',
  'dispute.created', 'dispute.won', 'dispute.lost', 'user.limits_request', 'user.limits_request.updated',
  'user.limits_request.partial_approval', 'user.limits_request.declined', 'endpoint.disabled',
];

describe('the bin', () => {
  it('node_modules/.bin/cashwire --help (the linked bin at the repository root) exits 0 and lists the commands', async () => {
    expect(existsSync(LINKED)).toBe(true);
    const r = await run(['--help'], {}, LINKED);
    expect(r.code, r.stderr).toBe(0);
    for (const c of ['start', 'worker', 'migrate', 'operator', 'key', 'events', 'endpoints', 'trigger', 'listen']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });

  it("every database command's help says it uses DATABASE_URL or the data folder; every remote command's says --api-url/--api-key or the env", async () => {
    const dbCommands = [['migrate'], ['operator', 'create'], ['operator', 'list'], ['operator', 'config'], ['key', 'create'], ['key', 'list'], ['key', 'revoke']];
    const remoteCommands = [['trigger'], ['events', 'list'], ['events', 'get'], ['events', 'resend'], ['endpoints', 'list'], ['endpoints', 'create'],
      ['endpoints', 'rotate'], ['endpoints', 'disable'], ['endpoints', 'enable']];
    const helps = await Promise.all([...dbCommands, ...remoteCommands].map((c) => run([...c, '--help'])));
    dbCommands.forEach((c, i) => {
      expect(helps[i]!.code, c.join(' ')).toBe(0);
      expect(helps[i]!.stdout.replace(/\s+/g, ' '), c.join(' ')).toMatch(/uses DATABASE_URL, or the embedded PostgreSQL of the data folder/);
    });
    remoteCommands.forEach((c, j) => {
      const h = helps[dbCommands.length + j]!;
      expect(h.code, c.join(' ')).toBe(0);
      const text = h.stdout.replace(/\s+/g, ' ');
      expect(text, c.join(' ')).toMatch(/uses --api-url\/--api-key or CASHWIRE_API_URL\/CASHWIRE_API_KEY/);
      expect(text, c.join(' ')).toContain('--api-url <url>');
    });
  }, 60_000);
});

describe('cashwire trigger', () => {
  it('--list lists every type of the catalog, Payment.Status included; --json too', async () => {
    const r = await cli(['trigger', '--list']);
    expect(r.code, r.stderr).toBe(0);
    for (const t of [...TRIGGERABLE, 'Payment.Status', 'delivery.exhausted', 'endpoint.recovered']) expect(r.stdout).toMatch(new RegExp(`^  ${t.replace(/\./g, '\\.')} `, 'm'));
    const j = await cli(['trigger', '--list', '--json']);
    const list = JSON.parse(j.stdout) as Array<{ type: string; triggerable: boolean }>;
    expect(list.filter((t) => t.triggerable).map((t) => t.type).sort()).toEqual([...TRIGGERABLE, 'Payment.Status'].sort());
  });

  it('an unknown type exits 1 with the list; no type exits 1 too', async () => {
    const r = await cli(['trigger', 'intent.aproved']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown event type "intent.aproved"');
    expect(r.stderr).toContain('intent.approved');
    expect(r.stderr).toContain('Payment.Status');
    expect((await cli(['trigger'])).code).toBe(1);
  });

  it.each(TRIGGERABLE)('%s: the event is in GET /events?type=… afterwards', async (type) => {
    const r = await cli(['trigger', type, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.type).toBe(type);
    expect(out.event_id).toMatch(/^evt_/);
    const listed = await api.get(`/events?type=${encodeURIComponent(type)}&limit=100`);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((e: { id: string }) => e.id)).toContain(out.event_id);
  }, 30_000);

  it('prints what it made, in words: the event id and the objects', async () => {
    const r = await cli(['trigger', 'intent.settled']);
    expect(r.code, r.stderr).toBe(0);
    const m = /^Triggered intent\.settled: (evt_\S+) \(user (user_\S+), intent (intent_sandbox_\S+)\)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stdout).toMatch(/also written: intent\.approved evt_/);
    const intent = await api.get(`/intent/${m![3]}`);
    expect(intent.body.transactions[0].status).toBe('settled');
    const ev = await api.get(`/events/${m![1]}`);
    expect(ev.body).toMatchObject({ type: 'intent.settled', intent_id: m![3] });
  });

  it('reuses the demo user (tag cli-trigger) for payments', async () => {
    const a = JSON.parse((await cli(['trigger', 'intent.approved', '--json'])).stdout);
    const b = JSON.parse((await cli(['trigger', 'intent.canceled', '--json'])).stdout);
    expect(a.objects.user).toBe(b.objects.user);
    expect((await api.get(`/user/${a.objects.user}`)).body.tag).toBe('cli-trigger');
  });

  it("a fresh user pays when the demo user's daily limit is used up", async () => {
    const small = await newOperator(s, 'Small Limits');
    expect((await client(s.url, small.sandbox).call('PATCH', '/operator/settings', { limits: { daily_cash_in: 1500 } })).status).toBe(200);
    const env = { CASHWIRE_API_KEY: small.sandbox };
    const a = await cli(['trigger', 'intent.approved', '--json'], env);
    const b = await cli(['trigger', 'intent.approved', '--json'], env);
    expect(b.code, b.stderr).toBe(0);
    const [first, second] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(second.event.type).toBe('intent.approved');
    expect(second.objects.user).not.toBe(first.objects.user);
  }, 30_000);

  it('the triggered objects are real: a declined refund is declined, a lost dispute lost, a partial approval sets the limit', async () => {
    const refund = JSON.parse((await cli(['trigger', 'refund.declined', '--json'])).stdout);
    expect((await api.get(`/refund/${refund.objects.refund}`)).body.status).toBe('declined');
    const lost = JSON.parse((await cli(['trigger', 'dispute.lost', '--json'])).stdout);
    expect((await api.get(`/dispute/${lost.objects.dispute}`)).body.status).toBe('lost');
    const partial = JSON.parse((await cli(['trigger', 'user.limits_request.partial_approval', '--json'])).stdout);
    expect(partial.event.data.user_id).toBe(partial.objects.user);
    expect((await api.get(`/user/${partial.objects.user}/limits_request`)).body.status).toBe('partial');
    const disabled = JSON.parse((await cli(['trigger', 'endpoint.disabled', '--json'])).stdout);
    expect(disabled.event.data.endpoint_id).toBe(disabled.objects.endpoint);
    // The throwaway endpoint is gone.
    expect((await api.get(`/webhook/endpoints/${disabled.objects.endpoint}`)).status).toBe(404);
  }, 30_000);

  it('Payment.Status: onboards the sandbox once (printing its keys), then needs the keys, or rotates on request', async () => {
    const first = await cli(['trigger', 'Payment.Status', '--webhook-url', 'http://127.0.0.1:9/sendcash']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^Triggered Payment\.Status: evt_\S+ \(endpoint ep_\S+, transfer trf_\S+\)$/m);
    const pub = /public key\s+(pk_test_\S+)/.exec(first.stdout)![1]!;
    const secret = /secret key\s+(sk_sc_\S+)/.exec(first.stdout)![1]!;
    expect(first.stdout).toContain(`export CASHWIRE_SENDCASH_PUBLIC_KEY=${pub} CASHWIRE_SENDCASH_SECRET_KEY=${secret}`);
    const listed = await api.get('/events?type=Payment.Status');
    expect(listed.body.data).toHaveLength(1);
    expect(listed.body.data[0].data.status).toBe('Completed');

    // Onboarded: the keys were shown once; without them the trigger says how to go on, and makes nothing.
    const again = await cli(['trigger', 'Payment.Status']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--sendcash-secret-key');
    expect((await api.get('/events?type=Payment.Status')).body.data).toHaveLength(1);

    const withEnv = await cli(['trigger', 'Payment.Status', '--json'], { CASHWIRE_SENDCASH_PUBLIC_KEY: pub, CASHWIRE_SENDCASH_SECRET_KEY: secret });
    expect(withEnv.code, withEnv.stderr).toBe(0);
    const ev = JSON.parse(withEnv.stdout).event_id;
    expect((await api.get('/events?type=Payment.Status')).body.data.map((e: { id: string }) => e.id)).toContain(ev);

    const rotated = await cli(['trigger', 'Payment.Status', '--rotate-sendcash-key']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newSecret = /Shown once: (sk_sc_\S+)/.exec(rotated.stdout)![1]!;
    expect(newSecret).not.toBe(secret);
    // The old secret key no longer signs.
    const stale = await cli(['trigger', 'Payment.Status'], { CASHWIRE_SENDCASH_PUBLIC_KEY: pub, CASHWIRE_SENDCASH_SECRET_KEY: secret });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('invalid_signature');
    expect((await api.get('/events?type=Payment.Status')).body.data).toHaveLength(3);
  }, 30_000);

  it('delivery.exhausted and endpoint.recovered answer "cannot be triggered" with exit 1', async () => {
    for (const t of ['delivery.exhausted', 'endpoint.recovered']) {
      const r = await cli(['trigger', t]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${t} cannot be triggered: `);
    }
  });

  it('refuses a production key with a clear message, and makes nothing', async () => {
    const prod = client(s.url, keys.production);
    const r = await cli(['trigger', 'intent.approved'], { CASHWIRE_API_KEY: keys.production });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sandbox key only: this is a production key/);
    expect((await prod.get('/events')).body.data).toEqual([]);
    expect((await prod.get('/user/list')).body.data).toEqual([]);
  });

  it('a bad key, or no key: exit 1 with the code or the way to pass one', async () => {
    const bad = await cli(['trigger', 'intent.approved'], { CASHWIRE_API_KEY: 'sk_sandbox_nope' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^cashwire: unauthorized: /);
    const none = await cli(['trigger', 'intent.approved'], { CASHWIRE_API_KEY: undefined });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('--api-key');
    const flag = await cli(['trigger', 'intent.approved', '--api-key', keys.sandbox, '--api-url', s.url], { CASHWIRE_API_KEY: undefined, CASHWIRE_API_URL: undefined });
    expect(flag.code, flag.stderr).toBe(0);
  });
});

describe('events and endpoints', () => {
  it('endpoints create|list|rotate|disable|enable, events list|get|resend, against a real receiver', async () => {
    const rx = await startReceiver();
    const workers = testWorkers(s);
    try {
      const created = await cli(['endpoints', 'create', `${rx.url}/hooks`, '--events', 'intent.approved,intent.settled', '--format', 'standard', '--payload-version', '2023-01']);
      expect(created.code, created.stderr).toBe(0);
      const id = /^(ep_\S+)\s+enabled\s+standard\s+2023-01\s+intent\.approved,intent\.settled\s+/m.exec(created.stdout)![1]!;
      const secret = /Secret \(shown once, keep it\): (whsec_\S+)/.exec(created.stdout)![1]!;
      expect((await api.get(`/webhook/endpoints/${id}/secret`)).body.secret).toBe(secret);

      const listed = await cli(['endpoints', 'list']);
      expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+enabled\\s+standard`, 'm'));
      expect(listed.stdout).not.toContain(secret);
      expect(JSON.parse((await cli(['endpoints', 'list', '--json'])).stdout).data.map((e: { id: string }) => e.id)).toContain(id);

      // An event delivered to it, verified with the printed secret.
      const t = JSON.parse((await cli(['trigger', 'intent.approved', '--json'])).stdout);
      await workers.make().tick();
      const got = rx.received.filter((x) => x.headers['webhook-id'] === t.event_id);
      expect(got).toHaveLength(1);
      await expect(verify('standard', { body: got[0]!.body, headers: got[0]!.headers as Record<string, string>, secrets: [secret] })).resolves.toBeTruthy();

      const list = await cli(['events', 'list', '--type', 'intent.approved', '--limit', '1']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout.trim().split('\n')).toHaveLength(3); // header, one event, "More: --cursor …"
      expect(list.stdout).toMatch(new RegExp(`\\s${t.event_id}\\s+intent\\.approved\\s+${t.objects.intent}$`, 'm'));
      expect(list.stdout).toMatch(/^More: --cursor \d+$/m);
      const byIntent = JSON.parse((await cli(['events', 'list', '--intent', t.objects.intent, '--json'])).stdout);
      expect(byIntent.data.map((e: { id: string }) => e.id)).toEqual([t.event_id]);
      const succeeded = JSON.parse((await cli(['events', 'list', '--status', 'succeeded', '--json'])).stdout);
      expect(succeeded.data.map((e: { id: string }) => e.id)).toEqual([t.event_id]);

      const get = await cli(['events', 'get', t.event_id]);
      expect(get.code, get.stderr).toBe(0);
      expect(get.stdout).toMatch(new RegExp(`^  delivery dlv_\\S+ → ${id} ${rx.url}/hooks \\(standard\\): succeeded, 1 attempt$`, 'm'));
      expect(get.stdout).toMatch(/^ {4}#1 {2}\S+ {2}HTTP 200 {2}\d+ ms {2}succeeded/m);
      expect(JSON.parse((await cli(['events', 'get', t.event_id, '--json'])).stdout).deliveries[0].attempt_log).toHaveLength(1);

      const resent = await cli(['events', 'resend', t.event_id]);
      expect(resent.code, resent.stderr).toBe(0);
      expect(resent.stdout).toContain(`Resent ${t.event_id}: 1 new delivery`);
      await workers.make().tick();
      expect(rx.received.filter((x) => x.headers['webhook-id'] === t.event_id)).toHaveLength(2);

      const rotated = await cli(['endpoints', 'rotate', id, '--grace-period', '60']);
      expect(rotated.code, rotated.stderr).toBe(0);
      const next = /New secret \(shown once, keep it\): (whsec_\S+)/.exec(rotated.stdout)![1]!;
      expect(next).not.toBe(secret);
      expect((await api.get(`/webhook/endpoints/${id}/secret`)).body).toMatchObject({ secret: next, previous_secret: secret });

      const disabled = await cli(['endpoints', 'disable', id]);
      expect(disabled.stdout).toMatch(new RegExp(`^${id}\\s+disabled \\(operator\\)`, 'm'));
      expect((await api.get(`/webhook/endpoints/${id}`)).body.status).toBe('disabled');
      const enabled = await cli(['endpoints', 'enable', id, '--json']);
      expect(JSON.parse(enabled.stdout).status).toBe('enabled');
    } finally {
      await workers.reset();
      await rx.close();
    }
  }, 60_000);

  it('errors print "cashwire: <code>: <message>" and exit 1', async () => {
    for (const [args, code] of [
      [['events', 'get', 'evt_nope'], 'event_not_found'],
      [['events', 'resend', 'evt_nope'], 'event_not_found'],
      [['endpoints', 'rotate', 'ep_nope'], 'endpoint_not_found'],
      [['endpoints', 'disable', 'ep_nope'], 'endpoint_not_found'],
      [['endpoints', 'enable', 'ep_nope'], 'endpoint_not_found'],
      [['endpoints', 'create', 'not a url'], 'invalid_url'],
      [['endpoints', 'create', 'http://127.0.0.1:9/', '--events', 'intent.nope'], 'unknown_event_type'],
      [['events', 'list', '--cursor', 'abc'], 'invalid_cursor'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(new RegExp(`^cashwire: ${code}: \\S`));
    }
    // Flags are checked before anything is sent.
    for (const args of [['events', 'list', '--status', 'done'], ['events', 'list', '--limit', '0'], ['endpoints', 'create', 'http://x.example', '--format', 'xml']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/error: option/);
    }
    // Nothing listening: says where it tried.
    const down = await cli(['events', 'list'], { CASHWIRE_API_URL: 'http://127.0.0.1:9' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach Cashwire at http://127.0.0.1:9');
  }, 60_000);
});

describe('cashwire operator list', () => {
  it("shows every operator's id, name and created_at, and its keys' prefixes and environments, never the keys", async () => {
    const other = await newOperator(s, 'Other Casino');
    const env = { DATABASE_URL: s.running.database.url, CASHWIRE_API_KEY: undefined, CASHWIRE_API_URL: undefined };
    const r = await cli(['operator', 'list'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${keys.id}  CLI Casino  created \\d{4}-`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^${other.id}  Other Casino  created `, 'm'));
    expect(r.stdout).toMatch(/^ {2}key_\S+ {2}sandbox {5}sk_sandbox_\S+… /m);
    expect(r.stdout).toMatch(/^ {2}key_\S+ {2}production {2}sk_production_\S*… /m);
    expect(r.stdout).toContain('cashwire key create <operator id>');
    for (const k of [keys.sandbox, keys.production, other.sandbox, other.production]) expect(r.stdout).not.toContain(k);

    const j = await cli(['operator', 'list', '--json'], env);
    const ops = JSON.parse(j.stdout) as Array<{ id: string; name: string; keys: Array<{ environment: string; prefix: string }> }>;
    const mine = ops.find((o) => o.id === keys.id)!;
    expect(mine.name).toBe('CLI Casino');
    expect(mine.keys.map((k) => k.environment).sort()).toEqual(['production', 'sandbox']);
    expect(keys.sandbox.startsWith(mine.keys.find((k) => k.environment === 'sandbox')!.prefix.replace('…', ''))).toBe(true);
    expect(j.stdout).not.toContain(keys.sandbox);

    // A lost key: the id from the list makes a new one, which works.
    const made = await cli(['key', 'create', keys.id], env);
    expect(made.code, made.stderr).toBe(0);
    const fresh = JSON.parse(made.stdout).key as string;
    expect((await client(s.url, fresh).post('/keys/verify')).body).toEqual({ name: 'CLI Casino', environment: 'sandbox' });
  }, 30_000);
});
