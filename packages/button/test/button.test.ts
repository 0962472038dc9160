/**
 * The PushJS-compatible button (dist/push.umd.js) in a real headless Chromium: what a merchant's cashier page shows
 * for each style, what clicks and key presses do, how bad options are reported, and that the Cashwire server serves it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../../server/test/helpers.js';
import { launchChromium, listenOnLoopback } from '../../server/test/browser.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const distFile = join(pkgDir, 'dist', 'push.umd.js');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string; dependencies?: object };

const ROYAL = 'rgb(29, 78, 216)';
const NAVY = 'rgb(11, 31, 68)';
const WHITE = 'rgb(255, 255, 255)';
const WHITE_BORDER = 'rgb(135, 146, 162)';
const BTN = 'button.pushcash-btn';

let browser: BrowserContext;
let site: Server;
let siteUrl: string;

/** The page's own test helpers live under window.t so the only global the script may add is PushCash. */
const HELPERS = `<script>
  window.t = { calls: 0, pending: null };
  window.t.deferred = function () { var d = {}; d.promise = new Promise(function (res, rej) { d.resolve = res; d.reject = rej; }); window.t.pending = d; return d.promise; };
</script>`;

function cashierPage(opts: { script?: boolean; head?: string } = {}): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cashier</title>${opts.head ?? ''}</head>
<body style="margin:0;padding:24px;font-family:sans-serif;background:#f6f7f9">
<h1>Cashier</h1>
<label>Amount <input id="amount"></label>
<div id="push" style="margin:16px 0"></div>
<div id="other" style="margin:16px 0"></div>
<button id="plain">A page button</button>
${HELPERS}
${opts.script === false ? '' : '<script src="/push.umd.js"></script>'}
</body></html>`;
}

const GALLERY_CSS = `<style>
  .row { display: flex; gap: 24px; align-items: center; margin: 12px 0; }
  .cell { display: flex; flex-direction: column; gap: 6px; font: 12px sans-serif; color: #333; }
  .dark { background: #111827; padding: 12px 24px 20px; margin: 0 -24px; } .dark .cell { color: #ddd; }
</style>`;

function galleryPage(): string {
  const cell = (id: string, caption: string) => `<div class="cell"><div id="${id}"></div><span>${caption}</span></div>`;
  const rows = [
    ['royal', 'white', 'navy'].map((c) => cell(`g-${c}-rect`, `${c} · rect (default size 300×48)`)).join(''),
    ['royal', 'white', 'navy'].map((c) => cell(`g-${c}-pill`, `${c} · pill`)).join(''),
    cell('g-disabled', 'disabled') + cell('g-busy', 'busy (after click)') + cell('g-focus', 'keyboard focus'),
    cell('g-min', 'min 252×36') + cell('g-custom', '420×60 · white · pill'),
    cell('g-max', 'max 800×80 · navy · pill'),
  ];
  const dark = ['royal', 'white', 'navy'].map((c) => cell(`d-${c}`, `${c} on a dark page`)).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PushCash button styles</title>${GALLERY_CSS}</head>
<body style="margin:0;padding:24px;background:#fff;font-family:sans-serif">
<input id="before" aria-label="before" style="position:absolute;left:-999px">
${rows.map((r) => `<div class="row">${r}</div>`).join('\n')}
<div class="dark"><div class="row">${dark}</div></div>
${HELPERS}<script src="/push.umd.js"></script></body></html>`;
}

function startSite(): Promise<void> {
  site = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const html = (body: string) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
    if (u.pathname === '/push.umd.js') return res.writeHead(200, { 'content-type': 'application/javascript' }).end(readFileSync(distFile));
    if (u.pathname === '/cashier') return html(cashierPage());
    if (u.pathname === '/bare') return html(cashierPage({ script: false }));
    // A merchant stylesheet that styles every button: the PushCash button must keep its own look.
    if (u.pathname === '/hostile') return html(cashierPage({ head: '<style>button{background:red!important;padding:40px;font-size:40px;width:10px;border-radius:0;box-shadow:5px 5px 0 #000}*{letter-spacing:3px}</style>' }));
    if (u.pathname === '/gallery') return html(galleryPage());
    if (u.pathname === '/session') return html('<!doctype html><title>Payment session</title><h1 id="session">Payment session</h1>');
    res.writeHead(404).end();
  });
  return listenOnLoopback(site).then((url) => {
    siteUrl = url;
  });
}

beforeAll(async () => {
  // Test what ships: build dist/push.umd.js from the current source.
  execFileSync(process.execPath, [join(pkgDir, 'build.mjs')], { stdio: 'inherit' });
  await startSite();
  browser = await launchChromium('cw-button-chromium-');
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
});

afterEach(async () => {
  await Promise.all(browser.pages().map((p) => p.close()));
});

interface Logged { type: string; text: string }

async function open(path = '/cashier'): Promise<{ page: Page; logs: Logged[]; errors: string[] }> {
  const page = await browser.newPage();
  const logs: Logged[] = [];
  const errors: string[] = [];
  page.on('console', (m) => logs.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(siteUrl + path);
  return { page, logs, errors };
}

/** Calls PushCash.Button(<options source>).render() in the page; reports whether a button came back and whether it threw. */
async function render(page: Page, options: string): Promise<{ rendered: boolean; threw?: string }> {
  return page.evaluate(`(() => {
    try { window.t.btn = window.PushCash.Button(${options}); return { rendered: window.t.btn.render() !== null }; }
    catch (e) { return { rendered: false, threw: String(e) }; }
  })()`);
}

async function look(page: Page, selector = BTN) {
  return page.locator(selector).evaluate((el) => {
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return {
      width: r.width,
      height: r.height,
      background: cs.backgroundColor,
      color: cs.color,
      radius: cs.borderTopLeftRadius,
      borderColor: cs.borderTopColor,
      borderWidth: cs.borderTopWidth,
      boxShadow: cs.boxShadow,
      outlineStyle: cs.outlineStyle,
      outlineWidth: cs.outlineWidth,
      opacity: cs.opacity,
      cursor: cs.cursor,
      fontSize: cs.fontSize,
      fontFamily: cs.fontFamily,
      letterSpacing: cs.letterSpacing,
    };
  });
}

/** WCAG contrast ratio of two rgb() colours. */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const pushErrors = (logs: Logged[]) => logs.filter((l) => l.type === 'error' && l.text.startsWith('[PushCash]')).map((l) => l.text);
const attr = (page: Page, name: string) => page.locator(BTN).getAttribute(name);

describe('the script', () => {
  it('is under 16 KB minified and under 10 KB gzipped, with no runtime dependencies', () => {
    const js = readFileSync(distFile);
    const gz = gzipSync(js).length;
    console.log(`push.umd.js: ${js.length} bytes minified, ${gz} bytes gzipped`);
    expect(js.length).toBeLessThan(16 * 1024); // the Button and the Widget
    expect(gz).toBeLessThan(10 * 1024);
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(js.toString()).not.toMatch(/\brequire\(|\bimport\b/);
  });

  it('exposes window.PushCash.Button and version, and adds no other global', async () => {
    const { page, errors } = await open();
    expect(await page.evaluate(() => typeof (window as any).PushCash.Button)).toBe('function');
    expect(await page.evaluate(() => (window as any).PushCash.version)).toBe(pkg.version);
    const withScript = await page.evaluate(() => Object.keys(window));
    const bare = await open('/bare');
    const without = await bare.page.evaluate(() => Object.keys(window));
    expect(withScript.filter((k) => !without.includes(k))).toEqual(['PushCash']);
    expect(errors).toEqual([]);
  });

  it('is served by the Cashwire server at /sdk/push.umd.js', async () => {
    const s = await startTestServer();
    try {
      const res = await fetch(`${s.url}/sdk/push.umd.js`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/javascript/);
      expect(await res.text()).toBe(readFileSync(distFile, 'utf8'));
    } finally {
      await s.stop();
    }
  });
});

describe('styles', () => {
  it('renders the default button: a real <button type="button">, royal, rect, 300×48, labelled "Pay with Push"', async () => {
    const { page, logs, errors } = await open();
    expect(await render(page, `{ selector: '#push' }`)).toEqual({ rendered: true });
    const btn = page.getByRole('button', { name: 'Pay with Push' });
    expect(await btn.count()).toBe(1);
    expect(await btn.evaluate((el) => [el.tagName, (el as HTMLButtonElement).type, el.parentElement?.id])).toEqual(['BUTTON', 'button', 'push']);
    expect(await btn.isEnabled()).toBe(true);
    expect(await attr(page, 'aria-disabled')).toBe('false');
    expect(await attr(page, 'aria-busy')).toBeNull();
    const s = await look(page);
    expect(s).toMatchObject({ width: 300, height: 48, background: ROYAL, color: WHITE, radius: '6px', cursor: 'pointer', boxShadow: 'none', opacity: '1' });
    expect(contrast(s.background, s.color)).toBeGreaterThanOrEqual(4.5);
    expect(pushErrors(logs)).toEqual([]);
    expect(errors).toEqual([]);
  });

  const expected = {
    royal: { background: ROYAL, color: WHITE, borderColor: ROYAL },
    navy: { background: NAVY, color: WHITE, borderColor: NAVY },
    white: { background: WHITE, color: NAVY, borderColor: WHITE_BORDER },
  } as const;
  const combos = (['royal', 'white', 'navy'] as const).flatMap((color) => (['rect', 'pill'] as const).map((shape) => [color, shape] as const));

  it.each(combos)('color %s, shape %s', async (color, shape) => {
    const { page, logs } = await open();
    expect(await render(page, `{ selector: '#push', style: { color: '${color}', shape: '${shape}' } }`)).toEqual({ rendered: true });
    const s = await look(page);
    expect(s).toMatchObject({ width: 300, height: 48, ...expected[color], borderWidth: '1px', radius: shape === 'pill' ? '24px' : '6px' });
    // Readable text on every background (WCAG AA for normal text).
    expect(contrast(s.background, s.color)).toBeGreaterThanOrEqual(4.5);
    // The white button's edge is a border with 3:1 contrast against its own white face (WCAG non-text contrast).
    if (color === 'white') expect(contrast(s.borderColor, WHITE)).toBeGreaterThanOrEqual(3);
    expect(pushErrors(logs)).toEqual([]);
  });

  it.each([
    [252, 36, 'rect'],
    [800, 80, 'rect'],
    [420, 60, 'pill'],
    [252, 36, 'pill'],
    [800, 80, 'pill'],
    [333.5, 41.5, 'rect'],
  ] as const)('custom size %s×%s (%s)', async (width, height, shape) => {
    const { page, logs } = await open();
    expect(await render(page, `{ selector: '#push', style: { width: ${width}, height: ${height}, shape: '${shape}' } }`)).toEqual({ rendered: true });
    const s = await look(page);
    expect(s.width).toBeCloseTo(width, 1);
    expect(s.height).toBeCloseTo(height, 1);
    expect(s.radius).toBe(shape === 'pill' ? `${height / 2}px` : '6px');
    // The label scales with the height: 14px at 36, 18px at 80.
    expect(parseFloat(s.fontSize)).toBeGreaterThanOrEqual(14);
    expect(parseFloat(s.fontSize)).toBeLessThanOrEqual(18);
    expect(pushErrors(logs)).toEqual([]);
  });

  it('keeps its own look on a page whose stylesheet restyles every button', async () => {
    const { page } = await open('/hostile');
    expect(await render(page, `{ selector: '#push', style: { color: 'navy', shape: 'pill', width: 360, height: 52 } }`)).toEqual({ rendered: true });
    const s = await look(page);
    // `background:red!important` on `button` outranks any normal declaration; everything else stays the button's own.
    expect(s).toMatchObject({ width: 360, height: 52, radius: '26px', color: WHITE, letterSpacing: 'normal', fontSize: '15px' });
    expect(s.boxShadow).toBe('none');
  });

  it('scopes its CSS: one <style>, every rule under .pushcash-btn, page buttons untouched', async () => {
    const { page } = await open();
    await render(page, `{ selector: '#push' }`);
    await render(page, `{ selector: '#other', style: { color: 'white' } }`);
    const sheet = await page.evaluate(() => {
      const styles = [...document.querySelectorAll('style')];
      const el = document.getElementById('pushcash-btn-styles') as HTMLStyleElement;
      const names: string[] = [];
      const walk = (rules: CSSRuleList) => {
        for (const r of [...rules]) {
          if (r instanceof CSSStyleRule) names.push(...r.selectorText.split(','));
          else if (r instanceof CSSKeyframesRule) names.push('@keyframes ' + r.name);
          else if (r instanceof CSSMediaRule) walk(r.cssRules);
          else names.push('?' + r.cssText);
        }
      };
      walk(el.sheet!.cssRules);
      return { count: styles.length, names };
    });
    expect(sheet.count).toBe(1);
    expect(sheet.names.length).toBeGreaterThan(5);
    for (const n of sheet.names) expect(n.trim()).toMatch(/^(\.pushcash-btn|@keyframes pushcash-btn)/);

    const plainStyle = (p: Page) =>
      p.locator('#plain').evaluate((el) => {
        const cs = getComputedStyle(el);
        return [cs.backgroundColor, cs.color, cs.borderRadius, cs.padding, cs.fontFamily, cs.fontSize, cs.width, cs.height, cs.cursor].join('|');
      });
    const bare = await open('/bare');
    expect(await plainStyle(page)).toBe(await plainStyle(bare.page));
  });

  it('render() again replaces the button instead of adding a second one', async () => {
    const { page } = await open();
    await render(page, `{ selector: '#push' }`);
    await page.evaluate(() => (window as any).t.btn.render());
    await render(page, `{ selector: '#push', style: { color: 'navy' } }`);
    expect(await page.locator(BTN).count()).toBe(1);
    expect((await look(page)).background).toBe(NAVY);
    expect(await page.locator('style#pushcash-btn-styles').count()).toBe(1);
    await page.evaluate(() => (window as any).t.btn.destroy());
    expect(await page.locator(BTN).count()).toBe(0);
  });

  it('works with `new` and with a custom label as its accessible name', async () => {
    const { page } = await open();
    await page.evaluate(() => new (window as any).PushCash.Button({ selector: '#push', label: 'Deposit with Push' }).render());
    expect(await page.getByRole('button', { name: 'Deposit with Push' }).count()).toBe(1);
  });
});

describe('disabled', () => {
  it('is not clickable or focusable, says so to assistive tech, and setDisabled(false) enables it', async () => {
    const { page, logs } = await open();
    await render(page, `{ selector: '#push', style: { disabled: true }, onClick: function () { window.t.calls++; return window.t.deferred(); } }`);
    const btn = page.locator(BTN);
    expect(await btn.isDisabled()).toBe(true);
    expect(await attr(page, 'aria-disabled')).toBe('true');
    expect(await btn.evaluate((el) => (el as HTMLButtonElement).disabled)).toBe(true);
    const s = await look(page);
    expect(s).toMatchObject({ cursor: 'not-allowed', opacity: '0.5' });
    await btn.click({ force: true });
    await btn.evaluate((el) => (el as HTMLButtonElement).click());
    expect(await page.evaluate(() => (window as any).t.calls)).toBe(0);
    // Tab from the amount field skips the disabled button.
    await page.locator('#amount').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('plain');

    await page.evaluate(() => (window as any).t.btn.setDisabled(false));
    expect(await btn.isEnabled()).toBe(true);
    expect(await attr(page, 'aria-disabled')).toBe('false');
    await btn.click();
    expect(await page.evaluate(() => (window as any).t.calls)).toBe(1);
    expect(pushErrors(logs)).toEqual([]);
  });
});

describe('click', () => {
  it('shows a busy state while onClick is pending, ignores more clicks, then navigates to the session URL', async () => {
    const { page, logs } = await open();
    await render(page, `{ selector: '#push', onClick: function () { window.t.calls++; return window.t.deferred(); } }`);
    const btn = page.locator(BTN);
    await btn.click();
    expect(await attr(page, 'aria-busy')).toBe('true');
    expect(await attr(page, 'aria-disabled')).toBe('true');
    expect((await btn.textContent())?.trim()).toBe('Loading…');
    expect(await page.locator('.pushcash-btn-spinner').isVisible()).toBe(true);
    expect(await page.locator('.pushcash-btn-spinner').getAttribute('aria-hidden')).toBe('true');
    expect((await look(page)).cursor).toBe('progress');
    // Double clicks while busy do not ask the backend again.
    await btn.click({ force: true });
    await btn.dblclick({ force: true });
    expect(await page.evaluate(() => (window as any).t.calls)).toBe(1);
    expect(page.url()).toBe(`${siteUrl}/cashier`);

    const session = `${siteUrl}/session?intent=pi_123`;
    await page.evaluate((u) => (window as any).t.pending.resolve(u), session);
    await page.waitForURL(session);
    expect(await page.locator('#session').textContent()).toBe('Payment session');
    expect(pushErrors(logs)).toEqual([]);
  });

  it('follows a URL returned synchronously, and a relative one resolved against the page', async () => {
    const { page } = await open();
    await render(page, `{ selector: '#push', onClick: function () { return ${JSON.stringify(`${siteUrl}/session?sync=1`)}; } }`);
    await page.locator(BTN).click();
    await page.waitForURL(`${siteUrl}/session?sync=1`);

    const second = await open();
    await render(second.page, `{ selector: '#push', onClick: function () { return Promise.resolve('/session?rel=1'); } }`);
    await second.page.locator(BTN).click();
    await second.page.waitForURL(`${siteUrl}/session?rel=1`);
  });

  it('restores the button and logs a clear error when onClick rejects; a later click tries again', async () => {
    const { page, logs, errors } = await open();
    await render(page, `{ selector: '#push', onClick: function () { window.t.calls++; return window.t.deferred(); } }`);
    const btn = page.locator(BTN);
    await btn.click();
    expect(await attr(page, 'aria-busy')).toBe('true');
    await page.evaluate(() => (window as any).t.pending.reject(new Error('backend said 500')));
    await expect.poll(() => attr(page, 'aria-busy')).toBeNull();
    expect(await attr(page, 'aria-disabled')).toBe('false');
    expect(await btn.isEnabled()).toBe(true);
    expect((await btn.textContent())?.trim()).toBe('Pay with Push');
    expect(await page.locator('.pushcash-btn-spinner').count()).toBe(0);
    const errs = pushErrors(logs);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('could not get the payment session URL from onClick');
    expect(errs[0]).toContain('backend said 500');
    expect(errors).toEqual([]); // handled: no uncaught error or unhandled rejection on the page
    expect(page.url()).toBe(`${siteUrl}/cashier`);

    await btn.click();
    expect(await page.evaluate(() => (window as any).t.calls)).toBe(2);
    expect(await attr(page, 'aria-busy')).toBe('true');
  });

  it.each([
    ['a javascript: URL', `'javascript:alert(1)'`, 'only http(s)'],
    ['a data: URL', `Promise.resolve('data:text/html,<h1>hi</h1>')`, 'only http(s)'],
    ['nothing', `Promise.resolve(undefined)`, 'must return the payment session URL'],
    ['an object', `Promise.resolve({ url: 'https://example.com' })`, 'must return the payment session URL'],
    ['a sync throw', `(function () { throw new Error('no session for you'); })()`, 'no session for you'],
  ])('restores the button when onClick gives %s', async (_name, body, message) => {
    const { page, logs, errors } = await open();
    await render(page, `{ selector: '#push', onClick: function () { window.t.calls++; return ${body}; } }`);
    await page.locator(BTN).click();
    await expect.poll(() => pushErrors(logs).length).toBe(1);
    expect(pushErrors(logs)[0]).toContain(message);
    expect(await attr(page, 'aria-busy')).toBeNull();
    expect(await page.locator(BTN).isEnabled()).toBe(true);
    expect((await page.locator(BTN).textContent())?.trim()).toBe('Pay with Push');
    expect(page.url()).toBe(`${siteUrl}/cashier`);
    expect(errors).toEqual([]);
  });

  it('logs an error and stays ready when clicked without an onClick', async () => {
    const { page, logs } = await open();
    await render(page, `{ selector: '#push' }`);
    await page.locator(BTN).click();
    await expect.poll(() => pushErrors(logs).length).toBe(1);
    expect(pushErrors(logs)[0]).toContain('no onClick callback');
    expect(await attr(page, 'aria-busy')).toBeNull();
  });

  it('comes back ready (not stuck busy) when the page is restored from the back/forward cache', async () => {
    const { page } = await open();
    await render(page, `{ selector: '#push', onClick: function () { return window.t.deferred(); } }`);
    await page.locator(BTN).click();
    expect(await attr(page, 'aria-busy')).toBe('true');
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })));
    expect(await attr(page, 'aria-busy')).toBeNull();
    expect((await page.locator(BTN).textContent())?.trim()).toBe('Pay with Push');
  });
});

describe('keyboard', () => {
  it('Tab focuses the button with a visible focus ring; Enter pays', async () => {
    const { page } = await open();
    await render(page, `{ selector: '#push', onClick: function () { window.t.calls++; return ${JSON.stringify(`${siteUrl}/session?via=enter`)}; } }`);
    const unfocused = await look(page);
    expect(unfocused.boxShadow).toBe('none');
    await page.locator('#amount').focus();
    await page.keyboard.press('Tab');
    const btn = page.locator(BTN);
    expect(await btn.evaluate((el) => el === document.activeElement && el.matches(':focus-visible'))).toBe(true);
    const focused = await look(page);
    // A two-tone ring (white gap, royal ring) drawn outside the button; the transparent outline is for forced-colors mode.
    expect(focused.boxShadow).toBe(`${WHITE} 0px 0px 0px 2px, ${ROYAL} 0px 0px 0px 4px`);
    expect(focused.outlineStyle).toBe('solid');
    expect(focused.outlineWidth).toBe('2px');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${siteUrl}/session?via=enter`);
  });

  it('Space pays too, and focus stays on the button while it is busy and after it is restored', async () => {
    const { page, logs } = await open();
    await render(page, `{ selector: '#push', style: { color: 'white', shape: 'pill' }, onClick: function () { window.t.calls++; return window.t.deferred(); } }`);
    await page.locator('#amount').focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Space');
    expect(await page.evaluate(() => (window as any).t.calls)).toBe(1);
    const btn = page.locator(BTN);
    expect(await attr(page, 'aria-busy')).toBe('true');
    expect(await btn.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter'); // ignored while busy
    expect(await page.evaluate(() => (window as any).t.calls)).toBe(1);
    await page.evaluate(() => (window as any).t.pending.reject(new Error('nope')));
    await expect.poll(() => attr(page, 'aria-busy')).toBeNull();
    expect(await btn.evaluate((el) => el === document.activeElement && el.matches(':focus-visible'))).toBe(true);
    expect(pushErrors(logs)).toHaveLength(1);
  });

  it('a mouse click does not show the focus ring', async () => {
    const { page } = await open();
    await render(page, `{ selector: '#push', onClick: function () { return window.t.deferred(); } }`);
    await page.locator(BTN).click();
    expect(await page.locator(BTN).evaluate((el) => el.matches(':focus-visible'))).toBe(false);
    expect((await look(page)).boxShadow).toBe('none');
  });
});

describe('bad options: a clear console error, nothing rendered, nothing thrown', () => {
  async function expectNothingRendered(options: string, message: string) {
    const { page, logs, errors } = await open();
    expect(await render(page, options)).toEqual({ rendered: false });
    const errs = pushErrors(logs);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('Button was not rendered');
    expect(errs[0]).toContain(message);
    expect(await page.locator('button').count()).toBe(1); // only the page's own #plain
    expect(await page.locator(BTN).count()).toBe(0);
    expect(await page.locator('#push').innerHTML()).toBe('');
    expect(errors).toEqual([]);
  }

  it.each([
    ['no element found', `{ selector: '#missing' }`, 'no element matches selector "#missing"'],
    ['invalid CSS', `{ selector: '##bad[' }`, 'selector "##bad[" is not a valid CSS selector'],
    ['empty', `{ selector: '' }`, 'selector must be a non-empty CSS selector string'],
    ['not a string', `{ selector: 42 }`, 'selector must be a non-empty CSS selector string; got 42'],
    ['missing options', `undefined`, 'needs an options object'],
  ])('selector: %s', async (_name, options, message) => expectNothingRendered(options, message));

  it.each([
    ['width 100', `{ width: 100 }`, 'style.width must be a number of pixels from 252 to 800; got 100'],
    ['width 801', `{ width: 801 }`, 'style.width must be a number of pixels from 252 to 800; got 801'],
    ['width "300"', `{ width: '300' }`, 'style.width must be a number of pixels from 252 to 800; got "300"'],
    ['width NaN', `{ width: NaN }`, 'style.width must be a number'],
    ['height 200', `{ height: 200 }`, 'style.height must be a number of pixels from 36 to 80; got 200'],
    ['height 35', `{ height: 35 }`, 'style.height must be a number of pixels from 36 to 80; got 35'],
    ['color red', `{ color: 'red' }`, `style.color must be one of 'royal', 'white', 'navy'; got "red"`],
    ['shape circle', `{ shape: 'circle' }`, `style.shape must be one of 'rect', 'pill'; got "circle"`],
    ['disabled "yes"', `{ disabled: 'yes' }`, 'style.disabled must be true or false'],
  ])('style: %s', async (_name, style, message) => expectNothingRendered(`{ selector: '#push', style: ${style} }`, message));

  it.each([
    ['onClick not a function', `{ selector: '#push', onClick: 'https://example.com' }`, 'onClick must be a function'],
    ['style not an object', `{ selector: '#push', style: 'royal' }`, 'style must be an object'],
    ['empty label', `{ selector: '#push', label: '  ' }`, 'label must be a non-empty string'],
  ])('%s', async (_name, options, message) => expectNothingRendered(options, message));

  it('warns about an unknown style key but still renders', async () => {
    const { page, logs } = await open();
    expect(await render(page, `{ selector: '#push', style: { colour: 'navy' } }`)).toEqual({ rendered: true });
    expect(logs.filter((l) => l.type === 'warning' && l.text.includes('[PushCash] ignoring unknown style option "colour"'))).toHaveLength(1);
  });

  it('a later invalid render() removes the earlier button rather than leaving a stale one', async () => {
    const { page, logs } = await open();
    await page.evaluate(() => {
      const t = (window as any).t;
      t.opts = { selector: '#push', style: { width: 300 } };
      t.btn = (window as any).PushCash.Button(t.opts);
      t.btn.render();
      t.opts.style.width = 100;
      t.second = t.btn.render();
    });
    expect(await page.evaluate(() => (window as any).t.second)).toBeNull();
    expect(await page.locator(BTN).count()).toBe(0);
    expect(pushErrors(logs)).toHaveLength(1);
  });
});

describe('screenshot', () => {
  it('saves every style to screenshots/button-styles.png', async () => {
    const { page, logs } = await open('/gallery');
    await page.setViewportSize({ width: 1040, height: 400 });
    await page.evaluate(() => {
      const P = (window as any).PushCash;
      const t = (window as any).t;
      for (const color of ['royal', 'white', 'navy'])
        for (const shape of ['rect', 'pill']) P.Button({ selector: `#g-${color}-${shape}`, style: { color, shape } }).render();
      P.Button({ selector: '#g-disabled', style: { disabled: true } }).render();
      P.Button({ selector: '#g-busy', onClick: () => t.deferred() }).render();
      P.Button({ selector: '#g-focus', style: { color: 'white' } }).render();
      P.Button({ selector: '#g-min', style: { width: 252, height: 36 } }).render();
      P.Button({ selector: '#g-custom', style: { width: 420, height: 60, color: 'white', shape: 'pill' } }).render();
      P.Button({ selector: '#g-max', style: { width: 800, height: 80, shape: 'pill', color: 'navy' } }).render();
      for (const color of ['royal', 'white', 'navy']) P.Button({ selector: `#d-${color}`, style: { color, shape: 'pill' } }).render();
    });
    await page.locator('#g-busy button').click();
    await page.locator('#g-focus button').focus(); // focus() from script after a click counts as keyboard-style focus
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    expect(await page.locator('#g-focus button').evaluate((el) => el.matches(':focus-visible'))).toBe(true);
    await page.evaluate(() => document.getAnimations().forEach((a) => a.pause()));
    const dir = join(pkgDir, 'screenshots');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'button-styles.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(readFileSync(file).length).toBeGreaterThan(1000);
    expect(pushErrors(logs)).toEqual([]);
  });
});
