/**
 * The pieces of the operator's branding that the full-page hosted pages share (the payment and step-up page, the
 * Sendcash payer page): the colours as CSS variables, the header with the logo and display name, and the "way back"
 * shown after completion. Pure: values in, HTML out. The Widget, which is compact, has its own (widget-page.ts).
 */
import { palette, type Branding, type Palette } from '../../domain/branding.js';

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON for a <script> block: no `</script>`, no `<!--`, no line separators. */
export const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

/**
 * The page's colours as CSS variables: `--accent` (buttons), `--on-accent` (their text), `--ink` (accent text on
 * white), `--ring` (focus rings), `--tint` (soft backgrounds). Without an accent: the page's own colours, unchanged;
 * with one, also a band of it along the top of the card.
 */
export function paletteCss(b: Branding, fallback: Palette & { ring: string }): string {
  const p = palette(b.accent_color, fallback);
  const branded = p !== fallback;
  return `:root{--accent:${p.accent};--on-accent:${p.onAccent};--ink:${p.ink};--ring:${branded ? p.ink : fallback.ring};--tint:${p.tint}}${branded ? 'main{border-top:4px solid var(--accent)}' : ''}`;
}

/** The logo, when there is one: an https image at most 40 px high (CSS `.logo`), its alt text the display name. */
export function logoImg(b: Branding, cls = 'logo'): string {
  if (!b.logo_url) return '';
  return `<img class="${cls}" src="${esc(b.logo_url)}" alt="${esc(b.display_name)}" data-testid="brand-logo" decoding="async" referrerpolicy="no-referrer">`;
}

/** The header: the logo (if any) beside the display name. */
export function brandHeader(b: Branding, h1Style = ''): string {
  return `<header class="brand">${logoImg(b)}<h1${h1Style ? ` style="${h1Style}"` : ''} data-testid="brand-name">${esc(b.display_name)}</h1></header>`;
}

/** CSS for the header, the logo and the way back, in the pages' own look. */
export const BRAND_CSS = `
 header.brand{display:flex;align-items:center;gap:12px;min-width:0;margin:0 0 4px} header.brand h1{margin:0;min-width:0;overflow-wrap:anywhere}
 .logo{display:block;flex:none;height:auto;width:auto;max-height:40px;max-width:140px;object-fit:contain}
 .way-back{margin-top:16px} .way-back[hidden]{display:none}
 a.back{display:block;text-align:center;font-weight:600;text-decoration:none;border-radius:8px;padding:10px 16px;border:1px solid var(--accent);background:var(--accent);color:var(--on-accent)}
 a.back:hover{text-decoration:underline;text-underline-offset:3px} a.back:focus-visible{outline:3px solid var(--ring);outline-offset:2px}
`;

/**
 * The script function `wayBack(el, {name, href, top})` that fills `el` with the way back to the merchant: a link
 * "Back to <name>" when there is somewhere to go (`top`: out of any frame the page is in); else, in a popup, a "Close this window" button; else, in an iframe, nothing to do
 * a sentence to continue in the page around it; else a sentence telling the user they can close the tab.
 */
export const WAY_BACK_SCRIPT = `
  function wayBack(el, w){
    if (!el) return;
    el.textContent = '';
    if (w.href) {
      var a = document.createElement('a');
      a.className = 'back'; a.href = w.href; if (w.top) a.target = '_top'; a.setAttribute('data-testid', 'back-link');
      a.textContent = 'Back to ' + w.name;
      el.appendChild(a);
    } else if (window.opener && window.opener !== window) {
      var b = document.createElement('button');
      b.type = 'button'; b.className = 'primary close'; b.id = 'close-window'; b.textContent = 'Close this window';
      b.addEventListener('click', function(){ window.close(); });
      el.appendChild(b);
    } else {
      var p = document.createElement('p');
      p.className = 'muted'; p.setAttribute('data-testid', 'back-hint');
      p.textContent = window.parent !== window ? 'You can now continue on ' + w.name + '.' : 'You can now close this tab and go back to ' + w.name + '.';
      el.appendChild(p);
    }
    el.hidden = false;
  }
`;

/** A logo that does not load is taken away, rather than shown as a broken image beside the name. */
export const LOGO_SCRIPT = `
  (function(){
    var logo = document.querySelector('img[data-testid=brand-logo]');
    if (!logo) return;
    function gone(){ if (logo.parentNode) logo.parentNode.removeChild(logo); }
    if (logo.complete && !logo.naturalWidth) gone(); else logo.addEventListener('error', gone);
  })();
`;
