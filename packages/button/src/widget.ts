/**
 * PushJS-compatible payment widget: `new window.PushCash.Widget({selector, url, onValid?, styling?}).tokenize()`.
 *
 * The constructor mounts an iframe of the widget URL (the `url` of POST /user/{id}/url) into the first element that
 * matches `selector`. The card form (or bank sign-in) lives in that iframe, on Cashwire's origin: card data never
 * reaches this page, only the token that `tokenize()` resolves with. Bad options never throw: they log
 * `[PushCash] …`, nothing is mounted, and `tokenize()` rejects with the code `invalid_options`.
 *
 * The two windows talk with postMessage, origins checked both ways. This script posts only to the widget URL's origin
 * and accepts only messages whose `source` is the iframe's window and whose `origin` is that origin:
 *   parent → iframe  {source: 'pushcash-sdk', v: 1, type: 'hello', styling}        on every iframe load
 *                    {source: 'pushcash-sdk', v: 1, type: 'tokenize', id}
 *   iframe → parent  {source: 'pushcash-widget', v: 1, type: 'ready', valid, method} the answer to hello
 *                    {…, type: 'resize', height}                                     the page's content height, px
 *                    {…, type: 'valid', valid}                                       when the form's validity changes
 *                    {…, type: 'tokenized', id, token}                               the answer to tokenize
 *                    {…, type: 'error', id?, code, message, fields?, server_code?}    a failed tokenize; without id: the
 *                                                                                    widget cannot be used (e.g. session_expired)
 */

import { findContainer, logError, shown } from './log.js';
declare const __VERSION__: string;

export interface WidgetStyling {
  /** The widget's background: a CSS color (#rgb, #rrggbb, #rrggbbaa, rgb()/rgba()/hsl()/hsla(), a color name or transparent). Default #fff. */
  background?: string;
  /** The text color; same forms as background. Default #14213d. */
  color?: string;
  /** The base font size: px as a number or a "NNpx" string, 12–24. Default 15. */
  fontSize?: number | string;
  /** The corner radius of fields and buttons: px, 0–24. Default 8. */
  borderRadius?: number | string;
  /** Space around the form inside the iframe: px, 0–32. Default 6. */
  padding?: number | string;
}

export interface WidgetOptions extends WidgetStyling {
  /** CSS selector of the element the widget is mounted into (the first match). */
  selector: string;
  /** The widget URL from your backend (POST /user/{id}/url); only http(s), relative URLs resolve against the page. */
  url: string | URL;
  /** Called each time the form becomes valid (all card fields complete and correct, or the bank account linked). */
  onValid?: () => void;
  /** The same keys as the top-level styling options; these win over the top-level ones. */
  styling?: WidgetStyling;
  /** How long tokenize() waits for the widget's answer, in ms (1000–120000); default 30000. */
  timeout?: number;
}

export type WidgetErrorCode =
  | 'invalid_options'
  | 'widget_not_ready'
  | 'form_invalid'
  | 'session_expired'
  | 'tokenization_failed'
  | 'unsupported_type'
  | 'timeout'
  | 'destroyed';

export interface WidgetError extends Error {
  code: WidgetErrorCode;
  /** form_invalid (and tokenization_failed when the server named one): the fields to fix: card_number, expiry, cvv, bank_sign_in. */
  fields?: string[];
  /** tokenization_failed, session_expired: the server's error code, e.g. invalid_card_number or nonce_invalid. */
  serverCode?: string;
}

export interface TokenizeResult {
  token: string;
}

export interface PushCashWidget {
  /** The token of the card or bank account in the form; rejects with a WidgetError (`code`, `message`). */
  tokenize(): Promise<TokenizeResult>;
  /** Removes the iframe; pending and later tokenize() calls reject with `destroyed`. */
  destroy(): void;
  /** The mounted iframe, or null. */
  readonly element: HTMLIFrameElement | null;
  /** True once the widget page answered the handshake and can tokenize. */
  readonly ready: boolean;
}

export interface WidgetConstructor {
  new (options: WidgetOptions): PushCashWidget;
  (options: WidgetOptions): PushCashWidget;
  readonly prototype: PushCashWidget;
}

export const WIDGET_LIMITS = { fontSize: [12, 24], borderRadius: [0, 24], padding: [0, 32], timeout: [1000, 120000] } as const;
const STYLING_KEYS = ['background', 'color', 'fontSize', 'borderRadius', 'padding'] as const;
const OPTION_KEYS: readonly string[] = ['selector', 'url', 'onValid', 'styling', 'timeout', ...STYLING_KEYS];
const DEFAULT_TIMEOUT = 30000;
/** The iframe's height until the page reports its own (the reference integration's container is 212 px high). */
const INITIAL_HEIGHT = 212;
const SDK = 'pushcash-sdk';
const PAGE = 'pushcash-widget';

/**
 * CSS colors, strictly: hex, rgb()/rgba()/hsl()/hsla() with plain numbers, a color keyword. No url(), var(), calc(),
 * semicolons or braces can get through, so the value is safe to hand to the iframe (which checks it again).
 */
const N = '\\s*[+-]?(?:\\d+(?:\\.\\d+)?|\\.\\d+)%?\\s*';
export const COLOR_PATTERN = new RegExp(
  `^(?:#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})|(?:rgba?|hsla?)\\((?:${N},${N},${N}(?:,${N})?|${N}\\s${N}\\s${N}(?:/${N})?)\\)|[a-z]{3,24})$`,
  'i',
);
const PX_PATTERN = /^(\d{1,3}(?:\.\d+)?)px$/;


function widgetError(code: WidgetErrorCode, message: string, extra: { fields?: string[]; serverCode?: string } = {}): WidgetError {
  const e = new Error(message) as WidgetError;
  e.name = 'PushCashWidgetError';
  e.code = code;
  if (extra.fields) e.fields = extra.fields;
  if (extra.serverCode) e.serverCode = extra.serverCode;
  return e;
}

type Styling = Partial<Record<(typeof STYLING_KEYS)[number], string | number>>;

/** The styling that passes the checks (top level, then `styling`, which wins); a bad value is warned about and left out. */
function resolveStyling(o: Record<string, unknown>): Styling {
  const out: Styling = {};
  const take = (src: Record<string, unknown>, where: string) => {
    for (const key of STYLING_KEYS) {
      const v = src[key];
      if (v === undefined) continue;
      const name = where + key;
      if (key === 'background' || key === 'color') {
        if (typeof v === 'string' && v.trim().length <= 64 && COLOR_PATTERN.test(v.trim())) out[key] = v.trim();
        else console.warn(`[PushCash] ignoring ${name}: it must be a CSS color such as "#1d4ed8" or "rgb(29, 78, 216)"; got ${shown(v)}`);
        continue;
      }
      const [min, max] = WIDGET_LIMITS[key];
      const m = typeof v === 'string' ? PX_PATTERN.exec(v.trim()) : null;
      const px = typeof v === 'number' ? v : m ? Number(m[1]) : NaN;
      if (isFinite(px) && px >= min && px <= max) out[key] = px;
      else console.warn(`[PushCash] ignoring ${name}: it must be a number of pixels (or a "NNpx" string) from ${min} to ${max}; got ${shown(v)}`);
    }
  };
  take(o, '');
  const s = o.styling;
  if (s !== undefined) {
    if (s && typeof s === 'object' && !Array.isArray(s)) {
      const st = s as Record<string, unknown>;
      for (const key of Object.keys(st)) {
        if ((STYLING_KEYS as readonly string[]).indexOf(key) < 0) console.warn(`[PushCash] ignoring unknown styling option ${JSON.stringify(key)} (known: ${STYLING_KEYS.join(', ')})`);
      }
      take(st, 'styling.');
    } else console.warn(`[PushCash] ignoring styling: it must be an object; got ${shown(s)}`);
  }
  return out;
}

interface Resolved {
  container: Element;
  url: string;
  origin: string;
  onValid?: () => void;
  styling: Styling;
  timeout: number;
}

/** Checks every option; returns the first problem as a message, or the resolved settings. */
function resolve(options: unknown): Resolved | string {
  if (!options || typeof options !== 'object') return `Widget(options) needs an options object; got ${shown(options)}`;
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (OPTION_KEYS.indexOf(key) < 0) console.warn(`[PushCash] ignoring unknown Widget option ${JSON.stringify(key)} (known: ${OPTION_KEYS.join(', ')})`);
  }
  const container = findContainer(o.selector);
  if (typeof container === 'string') return container;
  const raw = typeof o.url === 'string' ? o.url.trim() : o.url instanceof URL ? o.url.href : '';
  if (!raw) return `url must be the widget URL from your backend (POST /user/{id}/url); got ${shown(o.url)}`;
  let url: URL;
  try {
    url = new URL(raw, window.location.href);
  } catch {
    return `url ${JSON.stringify(raw)} is not a URL`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `url must be an http(s) URL; got a ${url.protocol} URL`;
  const onValid = o.onValid;
  if (onValid !== undefined && typeof onValid !== 'function') return `onValid must be a function; got ${shown(onValid)}`;
  const timeout = o.timeout === undefined ? DEFAULT_TIMEOUT : o.timeout;
  const [tmin, tmax] = WIDGET_LIMITS.timeout;
  if (typeof timeout !== 'number' || !isFinite(timeout) || timeout < tmin || timeout > tmax) return `timeout must be a number of milliseconds from ${tmin} to ${tmax}; got ${shown(timeout)}`;
  return { container, url: url.href, origin: url.origin, onValid: onValid as (() => void) | undefined, styling: resolveStyling(o), timeout };
}

/** The container's content height (its CSS height less padding), or 0 when it has none. */
function innerHeight(el: Element): number {
  const cs = getComputedStyle(el);
  const h = (el as HTMLElement).clientHeight - (parseFloat(cs.paddingTop) || 0) - (parseFloat(cs.paddingBottom) || 0);
  return h > 0 ? Math.floor(h) : 0;
}

interface Pending {
  resolve: (r: TokenizeResult) => void;
  reject: (e: WidgetError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The widget mounted in each container: a second Widget on the same element replaces the first. */
const mounted = typeof WeakMap === 'function' ? new WeakMap<Element, PushCashWidget>() : null;
let counter = 0;

function errorFromPage(d: Record<string, unknown>): WidgetError {
  const codes: readonly string[] = ['form_invalid', 'session_expired', 'tokenization_failed', 'unsupported_type'];
  const code = (typeof d.code === 'string' && codes.indexOf(d.code) >= 0 ? d.code : 'tokenization_failed') as WidgetErrorCode;
  const message = typeof d.message === 'string' && d.message ? d.message.slice(0, 500) : 'the widget could not tokenize';
  const fields = Array.isArray(d.fields) ? d.fields.filter((f): f is string => typeof f === 'string').slice(0, 10) : undefined;
  return widgetError(code, message, { fields, serverCode: typeof d.server_code === 'string' ? d.server_code.slice(0, 100) : undefined });
}

function WidgetImpl(this: unknown, options: WidgetOptions): PushCashWidget {
  let iframe: HTMLIFrameElement | null = null;
  let settings: Resolved | null = null;
  let problem: WidgetError | null = null; // why the widget cannot tokenize (bad options, an expired session)
  let ready = false;
  let destroyed = false;
  let valid = false;
  let token: string | null = null;
  const pending: Record<string, Pending> = {};
  const prefix = 'w' + ++counter + '-' + Math.random().toString(36).slice(2, 8) + '-';
  let seq = 0;

  const self = Object.create(Widget.prototype) as PushCashWidget;

  function post(message: Record<string, unknown>): boolean {
    const win = iframe && iframe.contentWindow;
    if (!win || !settings) return false;
    try {
      win.postMessage({ source: SDK, v: 1, ...message }, settings.origin);
      return true;
    } catch (e) {
      logError('could not post to the widget iframe.', e);
      return false;
    }
  }

  function settle(id: string, result: { token: string } | WidgetError): void {
    const p = pending[id];
    if (!p) return;
    delete pending[id];
    clearTimeout(p.timer);
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  function rejectAll(e: WidgetError): void {
    for (const id of Object.keys(pending)) settle(id, e);
  }

  function onMessage(event: MessageEvent): void {
    if (!iframe || !settings || event.source !== iframe.contentWindow || event.origin !== settings.origin) return;
    const d = event.data as Record<string, unknown> | null;
    if (!d || typeof d !== 'object' || d.source !== PAGE) return;
    switch (d.type) {
      case 'ready':
        ready = true;
        problem = null;
        setValid(d.valid === true);
        break;
      case 'resize': {
        const h = Number(d.height);
        if (isFinite(h) && h >= 0 && h <= 5000) iframe.style.height = Math.ceil(h) + 'px';
        break;
      }
      case 'valid':
        setValid(d.valid === true);
        break;
      case 'tokenized':
        if (typeof d.token === 'string' && d.token && typeof d.id === 'string') {
          token = d.token;
          settle(d.id, { token: d.token });
        }
        break;
      case 'error': {
        const e = errorFromPage(d);
        if (typeof d.id === 'string') settle(d.id, e);
        else {
          // The widget cannot be used at all (its session is spent or expired): every tokenize gets this answer.
          ready = false;
          problem = e;
          rejectAll(e);
        }
        break;
      }
    }
  }

  function setValid(v: boolean): void {
    const became = v && !valid;
    valid = v;
    if (!became || !settings || !settings.onValid) return;
    try {
      settings.onValid();
    } catch (e) {
      logError('the onValid callback threw.', e);
    }
  }

  function onLoad(): void {
    // A new document in the iframe (first load, or a reload): nothing is known about it until it answers hello.
    ready = false;
    post({ type: 'hello', styling: settings ? settings.styling : {}, sdk: __VERSION__ });
  }

  function destroy(): void {
    if (destroyed) return;
    destroyed = true;
    window.removeEventListener('message', onMessage);
    if (iframe) {
      iframe.removeEventListener('load', onLoad);
      iframe.remove();
    }
    if (settings && mounted && mounted.get(settings.container) === self) mounted.delete(settings.container);
    iframe = null;
    ready = false;
    rejectAll(widgetError('destroyed', 'the widget was destroyed'));
  }

  function tokenize(): Promise<TokenizeResult> {
    if (destroyed) return Promise.reject(widgetError('destroyed', 'the widget was destroyed'));
    // The widget's session is spent once a token is minted: the same token, every time (even if the iframe reloads).
    if (token) return Promise.resolve({ token });
    if (problem) return Promise.reject(widgetError(problem.code, problem.message, { fields: problem.fields, serverCode: problem.serverCode }));
    if (!ready || !settings) {
      return Promise.reject(widgetError('widget_not_ready', 'the widget has not loaded yet (or this site is not allowed to embed it: check the operator\'s allowed_origins); try again in a moment'));
    }
    const id = prefix + ++seq;
    const timeout = settings.timeout;
    return new Promise<TokenizeResult>((resolvePromise, rejectPromise) => {
      pending[id] = {
        resolve: resolvePromise,
        reject: rejectPromise,
        timer: setTimeout(() => settle(id, widgetError('timeout', `the widget did not answer within ${timeout / 1000} s; try again`)), timeout),
      };
      if (!post({ type: 'tokenize', id })) settle(id, widgetError('widget_not_ready', 'the widget iframe is gone; create the widget again'));
    });
  }

  try {
    const r = resolve(options);
    if (typeof r === 'string') {
      logError('Widget was not mounted: ' + r);
      problem = widgetError('invalid_options', 'the widget was not mounted: ' + r);
    } else {
      settings = r;
      const old = mounted && mounted.get(r.container);
      if (old) old.destroy();
      const f = document.createElement('iframe');
      f.setAttribute('data-pushcash', 'widget');
      f.title = 'Payment details';
      f.setAttribute('allow', 'payment');
      f.setAttribute('scrolling', 'no');
      f.style.cssText =
        'display:block;width:100%;max-width:100%;border:0;margin:0;padding:0;overflow:hidden;background:transparent;color-scheme:normal;height:' +
        (innerHeight(r.container) || INITIAL_HEIGHT) + 'px';
      window.addEventListener('message', onMessage);
      f.addEventListener('load', onLoad);
      f.src = r.url;
      iframe = f;
      r.container.appendChild(f);
      if (mounted) mounted.set(r.container, self);
    }
  } catch (e) {
    logError('Widget was not mounted because of an unexpected error.', e);
    problem = widgetError('invalid_options', 'the widget was not mounted because of an unexpected error');
    window.removeEventListener('message', onMessage);
    if (iframe) (iframe as HTMLIFrameElement).remove();
    iframe = null;
    settings = null;
  }

  Object.defineProperties(self, {
    tokenize: { value: tokenize },
    destroy: { value: destroy },
    element: { get: () => iframe, enumerable: true },
    ready: { get: () => ready, enumerable: true },
  });
  return self;
}

/** Works with `new` (as the reference integration calls it) and without. */
export const Widget = WidgetImpl as unknown as WidgetConstructor;
