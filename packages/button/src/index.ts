/**
 * PushJS-compatible payment button: `window.PushCash.Button({selector, style, onClick}).render()`.
 *
 * Loaded with a script tag (no bundler, no runtime dependencies). The button asks the merchant's callback for the
 * payment session URL and sends the user there. Bad options never throw: they log `[PushCash] …` and render nothing.
 */

import { Widget, type WidgetConstructor } from './widget.js';
import { findContainer, logError, shown } from './log.js';

export type { PushCashWidget, TokenizeResult, WidgetConstructor, WidgetError, WidgetErrorCode, WidgetOptions, WidgetStyling } from './widget.js';

declare const __VERSION__: string;

export type ButtonColor = 'royal' | 'white' | 'navy';
export type ButtonShape = 'rect' | 'pill';

export interface ButtonStyle {
  /** royal (default) | white | navy */
  color?: ButtonColor;
  /** rect (default, small radius) | pill (fully rounded) */
  shape?: ButtonShape;
  /** 252–800 px, default 300 */
  width?: number;
  /** 36–80 px, default 48 */
  height?: number;
  /** default false */
  disabled?: boolean;
}

export interface ButtonOptions {
  /** CSS selector of the element the button is rendered into (the first match). */
  selector: string;
  style?: ButtonStyle;
  /** Asks the merchant's backend for the payment session URL: returns the URL or a Promise of it. */
  onClick?: () => string | URL | PromiseLike<string | URL>;
  /** The button's text and accessible name; default "Pay with Push". */
  label?: string;
}

export interface PushCashButton {
  /** Renders (or re-renders) the button; returns it, or null when the options are invalid (logged, never thrown). */
  render(): HTMLButtonElement | null;
  /** Enables or disables the rendered button (e.g. keep withdrawals disabled until the user has deposited). */
  setDisabled(disabled: boolean): void;
  /** Removes the rendered button. */
  destroy(): void;
  /** The rendered button, or null. */
  readonly element: HTMLButtonElement | null;
}

export interface PushCashGlobal {
  Button: (options: ButtonOptions) => PushCashButton;
  /** The embedded card / bank form: `new PushCash.Widget({selector, url}).tokenize()` (see widget.ts). */
  Widget: WidgetConstructor;
  version: string;
}

declare global {
  interface Window {
    PushCash?: Partial<PushCashGlobal> & Record<string, unknown>;
  }
}

export const LIMITS = { width: [252, 800], height: [36, 80] } as const;
export const DEFAULTS = { color: 'royal', shape: 'rect', width: 300, height: 48, disabled: false, label: 'Pay with Push' } as const;

const P = 'pushcash-btn'; // class prefix: every rule the script injects is scoped under it
const STYLE_ID = P + '-styles';
const COLORS: readonly string[] = ['royal', 'white', 'navy'];
const SHAPES: readonly string[] = ['rect', 'pill'];
const STYLE_KEYS: readonly string[] = ['color', 'shape', 'width', 'height', 'disabled'];
const RECT_RADIUS = 6;

// `all: initial` shields the button from the page's own button/font rules; inline width/height/radius/font-size come per instance.
const CSS =
  `.${P}{all:initial;box-sizing:border-box;display:inline-flex;align-items:center;justify-content:center;gap:8px;max-width:100%;` +
  `margin:0;padding:0 16px;border:1px solid;cursor:pointer;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;` +
  `font-weight:600;line-height:1.2;text-align:center;white-space:nowrap;user-select:none;-webkit-user-select:none;` +
  `-webkit-tap-highlight-color:transparent;transition:background-color .15s,border-color .15s}` +
  `.${P}--royal{background:#1d4ed8;border-color:#1d4ed8;color:#fff}` +
  `.${P}--royal:not([aria-disabled=true]):hover{background:#1a43b8;border-color:#1a43b8}` +
  `.${P}--navy{background:#0b1f44;border-color:#0b1f44;color:#fff}` +
  `.${P}--navy:not([aria-disabled=true]):hover{background:#16305f;border-color:#16305f}` +
  `.${P}--white{background:#fff;border-color:#8792a2;color:#0b1f44}` +
  `.${P}--white:not([aria-disabled=true]):hover{background:#f1f4f9}` +
  // Two-tone ring: visible on light and dark pages; the transparent outline shows in forced-colors (high contrast) mode.
  `.${P}:focus-visible{outline:2px solid transparent;outline-offset:2px;box-shadow:0 0 0 2px #fff,0 0 0 4px #1d4ed8}` +
  `.${P}:disabled{cursor:not-allowed;opacity:.5}` +
  `.${P}[aria-busy=true]{cursor:progress}` +
  `.${P}-label{overflow:hidden;text-overflow:ellipsis}` +
  `.${P}-spinner{box-sizing:border-box;flex:none;width:1em;height:1em;border:2px solid currentColor;border-right-color:transparent;` +
  `border-radius:50%;animation:${P}-spin .7s linear infinite}` +
  `@keyframes ${P}-spin{to{transform:rotate(360deg)}}` +
  `@media (prefers-reduced-motion:reduce){.${P}-spinner{animation-duration:2.4s}}`;


interface Resolved {
  container: Element;
  color: string;
  shape: string;
  width: number;
  height: number;
  disabled: boolean;
  label: string;
  onClick?: ButtonOptions['onClick'];
}

/** Checks every option; returns the first problem as a message, or the resolved settings. */
function resolve(options: unknown): Resolved | string {
  if (!options || typeof options !== 'object') return `Button(options) needs an options object; got ${shown(options)}`;
  const o = options as Record<string, unknown>;
  const container = findContainer(o.selector);
  if (typeof container === 'string') return container;

  const style = o.style === undefined ? {} : o.style;
  if (!style || typeof style !== 'object' || Array.isArray(style)) return `style must be an object; got ${shown(style)}`;
  const s = style as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (STYLE_KEYS.indexOf(key) < 0) console.warn(`[PushCash] ignoring unknown style option ${JSON.stringify(key)} (known: ${STYLE_KEYS.join(', ')})`);
  }
  const color = s.color === undefined ? DEFAULTS.color : s.color;
  if (typeof color !== 'string' || COLORS.indexOf(color) < 0) return `style.color must be one of ${COLORS.map((c) => `'${c}'`).join(', ')}; got ${shown(color)}`;
  const shape = s.shape === undefined ? DEFAULTS.shape : s.shape;
  if (typeof shape !== 'string' || SHAPES.indexOf(shape) < 0) return `style.shape must be one of ${SHAPES.map((c) => `'${c}'`).join(', ')}; got ${shown(shape)}`;
  const size: Record<string, number> = {};
  for (const dim of ['width', 'height'] as const) {
    const v = s[dim] === undefined ? DEFAULTS[dim] : s[dim];
    const [min, max] = LIMITS[dim];
    if (typeof v !== 'number' || !isFinite(v) || v < min || v > max) return `style.${dim} must be a number of pixels from ${min} to ${max}; got ${shown(v)}`;
    size[dim] = v;
  }
  const disabled = s.disabled === undefined ? DEFAULTS.disabled : s.disabled;
  if (typeof disabled !== 'boolean') return `style.disabled must be true or false; got ${shown(disabled)}`;
  const label = o.label === undefined ? DEFAULTS.label : o.label;
  if (typeof label !== 'string' || !label.trim()) return `label must be a non-empty string; got ${shown(label)}`;
  const onClick = o.onClick;
  if (onClick !== undefined && typeof onClick !== 'function') return `onClick must be a function that returns the payment session URL (or a Promise of it); got ${shown(onClick)}`;
  return { container, color, shape, width: size.width, height: size.height, disabled, label: label.trim(), onClick: onClick as Resolved['onClick'] };
}

/** The session URL from the callback's result, resolved against the page; only http(s) is followed. */
function sessionUrl(value: unknown): string {
  const text = typeof value === 'string' ? value.trim() : value instanceof URL ? value.href : '';
  if (!text) throw new Error(`onClick must return the payment session URL (a string or a Promise of one); got ${shown(value)}`);
  let url: URL;
  try {
    url = new URL(text, window.location.href);
  } catch {
    throw new Error(`onClick returned ${JSON.stringify(text)}, which is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`onClick returned a ${url.protocol} URL; only http(s) payment session URLs are followed`);
  return url.href;
}

function injectStyles(): void {
  if (document.getElementById(STYLE_ID)) return;
  const el = document.createElement('style');
  el.id = STYLE_ID;
  el.textContent = CSS;
  (document.head || document.documentElement).appendChild(el);
}

function Button(options: ButtonOptions): PushCashButton {
  let el: HTMLButtonElement | null = null;
  let labelEl: HTMLSpanElement | null = null;
  let settings: Resolved | null = null;
  let busy = false;
  let disabled = false;
  let onPageShow: ((e: PageTransitionEvent) => void) | null = null;

  function sync(): void {
    if (!el || !labelEl || !settings) return;
    el.disabled = disabled;
    el.setAttribute('aria-disabled', String(disabled || busy));
    if (busy) el.setAttribute('aria-busy', 'true');
    else el.removeAttribute('aria-busy');
    labelEl.textContent = busy ? 'Loading…' : settings.label;
    const spinner = el.querySelector('.' + P + '-spinner');
    if (busy && !spinner) {
      const sp = document.createElement('span');
      sp.className = P + '-spinner';
      sp.setAttribute('aria-hidden', 'true');
      el.insertBefore(sp, labelEl);
    } else if (!busy && spinner) spinner.remove();
  }

  function setBusy(value: boolean): void {
    busy = value;
    sync();
  }

  async function handleClick(): Promise<void> {
    // Kept focusable while busy (aria-disabled rather than disabled) so keyboard focus is not lost; the guard stops double clicks.
    if (busy || disabled || !settings) return;
    const onClick = settings.onClick;
    if (!onClick) {
      logError('the button has no onClick callback; pass onClick: () => <payment session URL from your backend>');
      return;
    }
    setBusy(true);
    let url: string;
    try {
      url = sessionUrl(await onClick());
    } catch (e) {
      setBusy(false);
      logError('could not get the payment session URL from onClick; the button was restored.', e);
      return;
    }
    try {
      window.location.assign(url);
    } catch (e) {
      setBusy(false);
      logError('could not navigate to the payment session URL; the button was restored.', e);
    }
  }

  function destroy(): void {
    if (onPageShow) window.removeEventListener('pageshow', onPageShow);
    onPageShow = null;
    if (el) el.remove();
    el = labelEl = null;
    settings = null;
    busy = false;
  }

  function render(): HTMLButtonElement | null {
    try {
      const r = resolve(options);
      destroy();
      if (typeof r === 'string') {
        logError('Button was not rendered: ' + r);
        return null;
      }
      injectStyles();
      settings = r;
      disabled = r.disabled;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `${P} ${P}--${r.color} ${P}--${r.shape}`;
      b.setAttribute('data-pushcash', 'button');
      const st = b.style;
      st.width = r.width + 'px';
      st.height = r.height + 'px';
      st.borderRadius = (r.shape === 'pill' ? r.height / 2 : RECT_RADIUS) + 'px';
      st.fontSize = Math.round(14 + (r.height - 36) / 11) + 'px';
      const span = document.createElement('span');
      span.className = P + '-label';
      b.appendChild(span);
      b.addEventListener('click', () => void handleClick());
      el = b;
      labelEl = span;
      sync();
      // Back from the payment page via the back/forward cache: show the button ready again, not stuck in "Loading…".
      onPageShow = (e) => {
        if (e.persisted && busy) setBusy(false);
      };
      window.addEventListener('pageshow', onPageShow);
      // One button per container: a second render() (this or another instance) replaces the earlier one.
      const old = r.container.querySelectorAll(`:scope > .${P}`);
      for (let i = 0; i < old.length; i++) old[i].remove();
      r.container.appendChild(b);
      return b;
    } catch (e) {
      destroy();
      logError('Button was not rendered because of an unexpected error.', e);
      return null;
    }
  }

  return {
    render,
    destroy,
    setDisabled(value: boolean) {
      disabled = !!value;
      sync();
    },
    get element() {
      return el;
    },
  };
}

const w = window;
w.PushCash = w.PushCash || {};
w.PushCash.Button = Button;
w.PushCash.Widget = Widget;
w.PushCash.version = __VERSION__;
