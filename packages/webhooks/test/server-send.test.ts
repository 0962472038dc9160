/**
 * (f) The server's own signing path end to end: `send()` from the delivery engine POSTs through undici to a
 * node:http receiver built on this package's adapter.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent, prepare, send as sendPrepared, type Attempt, type SendTimeouts } from '../../server/src/delivery/sender.js';
import { PAYLOAD_VERSIONS, FORMATS, checkSenderName, memoryStore, nodeHandler, type EventRecord, type Format, type WebhookEvent } from '../src/index.js';
import { OLD_SECRET, OLD_WHSEC, SECRET, WHSEC, approved, exhausted, paymentStatusBody } from './fixtures.js';

const timeouts = { connectTimeoutMs: 2_000, totalTimeoutMs: 5_000 };
const agent = createAgent(timeouts, 4);
const received: Record<Format, WebhookEvent[]> = { pushcash: [], sendcash: [], standard: [] };
let server: http.Server;
let base: string;

beforeAll(async () => {
  // One route per format; the receiver knows the old secret too, as during a rotation.
  const handlers = Object.fromEntries(
    FORMATS.map((format) => [
      `/${format}`,
      nodeHandler({
        format,
        secrets: format === 'standard' ? [OLD_WHSEC, WHSEC] : [OLD_SECRET, SECRET],
        store: memoryStore(),
        onEvent: (event) => void received[format].push(event),
      }),
    ]),
  );
  server = http.createServer((req, res) => void handlers[req.url ?? '']!(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await agent.close();
  await new Promise((resolve) => server.close(resolve));
});

function attempt(format: Format, o: Partial<Attempt> = {}): Attempt {
  return { url: `${base}/${format}`, format, payloadVersion: '2024-05', secrets: [format === 'standard' ? WHSEC : SECRET], event: approved, at: new Date(), ...o };
}

/** The worker's two steps: prepare (render and sign), then send. */
const send = async (agent: Parameters<typeof sendPrepared>[0], a: Attempt, t: SendTimeouts) => sendPrepared(agent, await prepare(a), t);

describe("the server's send() against this package's node:http adapter", () => {
  it.each(FORMATS)('%s: every payload version verifies, parses to the same event, and a redelivery is a duplicate', async (format) => {
    for (const payloadVersion of PAYLOAD_VERSIONS) {
      const event = { ...approved, id: `evt_${format}_${payloadVersion}`, data: { ...approved.data, id: `intent_${format}_${payloadVersion}` } } as typeof approved;
      const first = await send(agent, attempt(format, { payloadVersion, event }), timeouts);
      expect(first.status, first.excerpt).toBe(200);
      expect(JSON.parse(first.excerpt!)).toEqual({ received: true });
      const again = await send(agent, attempt(format, { payloadVersion, event, at: new Date(Date.now() + 1_000) }), timeouts);
      expect(JSON.parse(again.excerpt!)).toEqual({ received: true, duplicate: true });
    }
    const got = received[format].filter((e) => e.type === 'intent.approved');
    expect(got.map((e) => [e.version, e.data])).toEqual(PAYLOAD_VERSIONS.map((v) => [v, expect.objectContaining({ id: `intent_${format}_${v}`, amount: v === '2024-05' ? 5025 : 50.25 })]));
    // standard keys on the signed webhook-id; the others on the signed body, whatever x-webhook-id says
    expect(got[0]!.id).toBe(format === 'standard' ? `evt_${format}_2024-05` : `intent.approved:intent_${format}_2024-05:approved`);
  });

  it('the server signing with both secrets during a rotation (standard), or with the old one (pushcash), passes', async () => {
    const r1 = await send(agent, attempt('standard', { secrets: [`whsec_${Buffer.from('n'.repeat(32)).toString('base64')}`, OLD_WHSEC], event: exhausted }), timeouts);
    expect(r1.status, r1.excerpt).toBe(200);
    const r2 = await send(agent, attempt('pushcash', { secrets: [OLD_SECRET], event: exhausted }), timeouts);
    expect(r2.status, r2.excerpt).toBe(200);
    expect(received.standard.at(-1)).toMatchObject({ type: 'delivery.exhausted', version: null, id: exhausted.id });
  });

  it("Sendcash's Payment.Status, as the server renders it ({event, data}, no timestamp), arrives typed", async () => {
    const data = JSON.parse(paymentStatusBody).data;
    const event = { id: 'evt_ps_1', type: 'Payment.Status', data } as unknown as EventRecord; // the server stores it beside the catalog's events
    const r = await send(agent, attempt('sendcash', { event, at: new Date(0) }), timeouts); // no timestamp: any attempt time passes
    expect(r.status, r.excerpt).toBe(200);
    const got = received.sendcash.at(-1)!;
    expect(got).toMatchObject({ type: 'Payment.Status', id: 'Payment.Status:ref_0001:Completed', timestamp: null, data });
    if (got.type === 'Payment.Status') expect(checkSenderName(got.data, 'Chidi Adé Okonkwo')).toMatchObject({ match: true, skipped: false });
  });

  it('a secret the receiver does not know is 401 bad_signature; an attempt stamped 11 minutes ago is 401 stale_timestamp', async () => {
    const wrong = await send(agent, attempt('sendcash', { secrets: ['not_the_merchants_secret_0123456789'] }), timeouts);
    expect([wrong.status, JSON.parse(wrong.excerpt!).error]).toEqual([401, 'bad_signature']);
    const old = await send(agent, attempt('pushcash', { at: new Date(Date.now() - 11 * 60_000), event: { ...approved, id: 'evt_late' } }), timeouts);
    expect([old.status, JSON.parse(old.excerpt!).error]).toEqual([401, 'stale_timestamp']);
  });
});
