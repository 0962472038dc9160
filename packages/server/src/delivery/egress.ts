/**
 * Deliveries through an egress proxy (CASHWIRE_EGRESS_PROXY), so that webhooks leave from the proxy's static
 * addresses. A connector for undici's Agent: every new connection is an HTTP CONNECT tunnel through the proxy, for
 * http:// and https:// destinations alike; TLS runs end to end with the destination inside the tunnel, its SNI and
 * certificate check on the destination's name, and requests keep their Host header.
 *
 * undici's ProxyAgent is not used: it CONNECTs to the destination's name (the proxy resolves it), with no way to check
 * the address first and pin it, and it reports a refused tunnel as a RequestAbortedError, which reads as a shutdown.
 *
 * With a `lookup` (production: the SSRF guard of security/ssrf.ts) the connector resolves the destination itself,
 * the guard refusing forbidden addresses as on the direct path (`forbidden_address`, before the proxy is contacted),
 * and CONNECTs to the checked address, so a rebinding between our check and a lookup of the proxy's cannot reach an
 * internal address. The proxy's own address is not checked: it usually is a private one. Without a `lookup`
 * (sandbox) the proxy is asked for the name.
 *
 * Failures of the proxy (unreachable, no answer in time, an answer other than 2xx to CONNECT) are `proxy_error`s;
 * the connect timeout covers the lookup, the tunnel and the TLS handshake together, like undici's own.
 */
import http from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';
import { buildConnector, errors } from 'undici';
import type { LookupFn } from '../security/ssrf.js';

/** Whatever went wrong with the proxy itself; `status` is its answer to CONNECT, if it gave one. */
export class ProxyError extends Error {
  code = 'proxy_error';
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'ProxyError';
  }
}

/** Refuses anything but an http:// URL with a host; returns it parsed. The value is never echoed whole: it may carry a password. */
export function parseProxyUrl(value: string): URL {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    /* below */
  }
  if (!u || u.protocol !== 'http:' || !u.hostname) {
    throw new Error(`the egress proxy must be an http:// URL such as http://proxy.internal:3128, got ${JSON.stringify(value.replace(/\/\/[^/@]*@/, '//…@'))}`);
  }
  return u;
}

export interface ProxyConnectorOptions {
  /** The proxy: http://[user:password@]host[:port]. */
  proxy: string;
  /** Lookup, tunnel and TLS handshake, all together. */
  timeoutMs: number;
  /** Resolves (and checks) the destination's name here; unset, the proxy resolves it. */
  lookup?: LookupFn;
}

const noop = () => {};

/** A `connect` for undici's Agent that tunnels every connection through the proxy. */
export function proxyConnector(o: ProxyConnectorOptions): buildConnector.connector {
  const proxy = parseProxyUrl(o.proxy);
  const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(proxy.port || 80);
  const authorization = proxy.username || proxy.password
    ? `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`
    : undefined;
  // The deadline below covers the TLS handshake too: no timeout of its own.
  const tlsConnect = buildConnector({ timeout: 0 });

  return (opts, callback) => {
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    let phase: 'lookup' | 'proxy' | 'tls' = 'lookup';
    let settled = false;
    let req: http.ClientRequest | undefined;
    let tunnel: Socket | undefined;

    const finish = (err: Error | null, socket?: Socket) => {
      if (settled) {
        socket?.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (err) callback(err, null);
      else callback(null, socket!);
    };

    const timer = setTimeout(() => {
      const err = phase === 'proxy'
        ? new ProxyError(`the egress proxy did not open a tunnel to ${opts.hostname}:${port} within ${o.timeoutMs} ms`)
        : new errors.ConnectTimeoutError(`Connect Timeout Error (${phase === 'lookup' ? 'resolving' : 'TLS with'} ${opts.hostname}:${port} through the egress proxy, timeout: ${o.timeoutMs}ms)`);
      finish(err);
      req?.destroy();
      tunnel?.destroy();
    }, o.timeoutMs);
    timer.unref();

    const open = (address: string) => {
      if (settled) return;
      phase = 'proxy';
      const authority = net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
      req = http.request({
        host: proxyHost,
        port: proxyPort,
        method: 'CONNECT',
        path: authority,
        agent: false,
        headers: { host: authority, ...(authorization ? { 'proxy-authorization': authorization } : {}) },
      });
      // The proxy's address stays out of the message: attempt messages are shown to operators.
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        finish(new ProxyError(`the egress proxy could not be reached or dropped the connection (${code ?? err.message})`));
      });
      req.once('connect', (res, socket, head) => {
        socket.on('error', noop); // until a TLS socket or undici takes it over, with listeners of their own
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          socket.destroy();
          finish(new ProxyError(`the egress proxy answered ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''} to CONNECT ${authority}`, status));
          return;
        }
        if (settled) {
          socket.destroy();
          return;
        }
        if (head.length > 0) socket.unshift(head);
        socket.setKeepAlive(true, 60_000);
        socket.setNoDelay(true);
        if (opts.protocol !== 'https:') {
          finish(null, socket);
          return;
        }
        phase = 'tls';
        tunnel = socket;
        // SNI and the certificate check on the destination's name (from `host`), whatever address the tunnel goes to.
        tlsConnect({ ...opts, port: String(port), httpSocket: socket }, (err, tlsSocket) => {
          if (err) {
            socket.destroy();
            finish(err);
          } else finish(null, tlsSocket!);
        });
      });
      req.end();
    };

    const host = opts.hostname;
    if (!o.lookup || net.isIP(host)) {
      open(host);
      return;
    }
    try {
      o.lookup(host, { all: true }, (err, address, family) => {
        if (settled) return;
        if (err) return finish(err);
        const list = Array.isArray(address) ? address : [{ address, family: family ?? net.isIP(address) }];
        // IPv4 first: egress proxies and their static addresses usually are.
        const pick = list.find((a) => net.isIPv4(a.address)) ?? list[0];
        if (!pick?.address) return finish(Object.assign(new Error(`${host} did not resolve to any address`), { code: 'ENOTFOUND' }));
        open(pick.address);
      });
    } catch (err) {
      finish(err as Error);
    }
  };
}
