/**
 * An attempt's request as it went out, rendered again for the dashboard's event page: the same code the worker runs
 * (sender.ts prepare(): renderPayload, then signHeadersWith) at the attempt's own time (its started_at is the instant
 * the worker signed with, worker.ts), so the body's timestamp and the signature are the ones the receiver got. The
 * secret signs here as it did there and is never part of what is shown; the signature header is.
 *
 * What can no longer be reproduced is said, not guessed: an endpoint whose secret was rotated after the attempt (its
 * signature was made with a secret that is gone), or whose URL, format or payload version changed since (the worker
 * uses the endpoint's settings of the moment; migration 018 records when they last changed), and forwards made by
 * `cashwire listen` (signed on the developer's machine).
 */
import type { EventRecord, Format, PayloadVersion } from '@cashwire/webhooks';
import type { SecretBox } from '../security/secrets.js';
import type { SigningRow } from './queue.js';
import { prepare } from './sender.js';

export interface RequestView {
  method: 'POST';
  url: string;
  /** In the order they were sent, as the receiver saw them (host and content-length, which undici adds, included). */
  headers: [string, string][];
  body: string;
  /** Whether the headers and body are exactly what was sent; if not, `note` says why. */
  exact: boolean;
  note?: string;
}

/** The settings an attempt was signed with: the endpoint's (current) ones for a registered endpoint, else the delivery's own. */
function settingsOf(s: SigningRow): { url: string; format: Format; payloadVersion: PayloadVersion; secret: string | null } {
  return s.endpoint_id && s.ep_url
    ? { url: s.ep_url, format: s.ep_format!, payloadVersion: s.ep_payload_version!, secret: s.ep_secret }
    : { url: s.url, format: s.format, payloadVersion: s.payload_version, secret: s.secret };
}

/** Why an attempt at `at` cannot be rendered exactly as it went out; undefined if it can. */
export function notReproducible(s: SigningRow, at: Date): string | undefined {
  if (s.lane === 'cli') return 'Forwarded by cashwire listen and signed on that machine: the request below is rendered with this server\'s settings, not the one sent.';
  if (s.secret_rotated_at && s.secret_rotated_at > at) {
    return `The endpoint's secret was rotated after this attempt (${s.secret_rotated_at.toISOString()}): the signature that was sent cannot be reproduced.`;
  }
  if (s.signing_changed_at && s.signing_changed_at > at) {
    return `The endpoint's URL, format or payload version changed after this attempt (${s.signing_changed_at.toISOString()}): the request below uses the current settings.`;
  }
  return undefined;
}

/**
 * Renders the request of the attempt that started at `at`. Never throws: a secret this server cannot open yields the
 * request without its signature, and a note.
 */
export function renderRequest(s: SigningRow, event: EventRecord, at: Date, secrets: SecretBox): RequestView {
  const st = settingsOf(s);
  let note = notReproducible(s, at);
  const rotated = Boolean(s.secret_rotated_at && s.secret_rotated_at > at);
  let signing: string[] = [];
  if (!rotated) {
    try {
      // As worker.ts secretsOf: Standard Webhooks also carries the previous secret's signature while it is valid.
      const own = st.secret ? [secrets.open(st.secret)] : [];
      const previousValid = s.previous_secret && s.previous_expires_at && s.previous_expires_at > at && st.format === 'standard';
      signing = previousValid ? [...own, secrets.open(s.previous_secret!)] : own;
    } catch {
      note ??= 'This server cannot open the secret (another CASHWIRE_SECRET_KEY?): the signature is not shown.';
      signing = [];
    }
  }
  let prepared;
  try {
    prepared = prepare({ url: st.url, format: st.format, payloadVersion: st.payloadVersion, secrets: signing, event, at });
  } catch {
    return { method: 'POST', url: st.url, headers: [], body: '', exact: false, note: 'This URL does not parse: no request was sent.' };
  }
  const host = new URL(st.url).host;
  const headers: [string, string][] = [['host', host], ...Object.entries(prepared.headers), ['content-length', String(Buffer.byteLength(prepared.body))]];
  // A rotated secret: the signature header is left out rather than shown with a value that was never sent.
  const shown = rotated ? headers.filter(([k]) => !/signature/.test(k)) : headers;
  return { method: 'POST', url: st.url, headers: shown, body: prepared.body, exact: note === undefined, ...(note ? { note } : {}) };
}
