/**
 * The operator's branding on the hosted pages (operator settings `branding`): what its values may be, and the colours
 * a page derives from the accent so that text on it and next to it stays readable (WCAG contrast). Pure.
 */

export interface BrandingSettings {
  /** Shown instead of the operator's name; 1–64 characters. */
  display_name?: string | null;
  /** An https image URL. */
  logo_url?: string | null;
  /** `#rrggbb`. */
  accent_color?: string | null;
  /** Where "Back to <display name>" goes when a payment has no redirect_url; http(s). */
  return_url?: string | null;
}

/** The branding in force: the defaults filled in. */
export interface Branding {
  display_name: string;
  logo_url: string | null;
  accent_color: string | null;
  return_url: string | null;
}

export const HEX_COLOR = /^#[0-9a-fA-F]{6}$/;

/** The origin of a logo, as it goes into the Widget's CSP `img-src`: https, a plain host name, an optional port. */
export const LOGO_ORIGIN = /^https:\/\/[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?$/;

/** The logo's origin for a CSP source list, or null (no logo, or one that is not acceptable there). */
export function logoOrigin(logoUrl: string | null | undefined): string | null {
  if (!logoUrl) return null;
  try {
    const o = new URL(logoUrl).origin;
    return LOGO_ORIGIN.test(o) ? o : null;
  } catch {
    return null;
  }
}

export type BrandingProblem = { field: keyof BrandingSettings; message: string; code: 'invalid_value' | 'invalid_url' | 'invalid_format' | 'invalid_length' };

function parseUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/**
 * Checks one branding patch; returns it normalised (trimmed, colour in lower case) or the first problem. `null`
 * clears a value (back to its default).
 */
export function checkBranding(b: BrandingSettings): { ok: BrandingSettings } | { problem: BrandingProblem } {
  const out: BrandingSettings = {};
  if (b.display_name !== undefined) {
    if (b.display_name === null) out.display_name = null;
    else {
      const name = b.display_name.trim();
      if (name.length < 1 || name.length > 64) return { problem: { field: 'display_name', code: 'invalid_length', message: 'branding.display_name must be 1 to 64 characters (not only spaces)' } };
      if (/[\u0000-\u001f\u007f]/.test(name)) return { problem: { field: 'display_name', code: 'invalid_value', message: 'branding.display_name may not contain control characters' } };
      out.display_name = name;
    }
  }
  if (b.logo_url !== undefined) {
    if (b.logo_url === null) out.logo_url = null;
    else {
      const u = parseUrl(b.logo_url.trim());
      if (!u) return { problem: { field: 'logo_url', code: 'invalid_url', message: `branding.logo_url ${JSON.stringify(b.logo_url)} is not an absolute URL such as "https://casino.example/logo.png"` } };
      if (u.protocol !== 'https:') return { problem: { field: 'logo_url', code: 'invalid_value', message: 'branding.logo_url must be an https URL (the pages load it over https only)' } };
      if (u.username || u.password) return { problem: { field: 'logo_url', code: 'invalid_value', message: 'branding.logo_url may not carry a user name or password' } };
      if (!LOGO_ORIGIN.test(u.origin)) return { problem: { field: 'logo_url', code: 'invalid_url', message: 'branding.logo_url must be on a host name of letters, digits, dots and hyphens' } };
      if (u.href.length > 2048) return { problem: { field: 'logo_url', code: 'invalid_length', message: 'branding.logo_url must be at most 2048 characters' } };
      out.logo_url = u.href;
    }
  }
  if (b.accent_color !== undefined) {
    if (b.accent_color === null) out.accent_color = null;
    else {
      const c = b.accent_color.trim();
      if (!HEX_COLOR.test(c)) return { problem: { field: 'accent_color', code: 'invalid_format', message: `branding.accent_color ${JSON.stringify(b.accent_color)} is not a colour of the form #rrggbb, e.g. "#0f766e"` } };
      out.accent_color = c.toLowerCase();
    }
  }
  if (b.return_url !== undefined) {
    if (b.return_url === null) out.return_url = null;
    else {
      const u = parseUrl(b.return_url.trim());
      if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
        return { problem: { field: 'return_url', code: 'invalid_url', message: `branding.return_url ${JSON.stringify(b.return_url)} is not an absolute http(s) URL such as "https://casino.example/cashier"` } };
      }
      if (u.username || u.password) return { problem: { field: 'return_url', code: 'invalid_value', message: 'branding.return_url may not carry a user name or password' } };
      if (u.href.length > 2048) return { problem: { field: 'return_url', code: 'invalid_length', message: 'branding.return_url must be at most 2048 characters' } };
      out.return_url = u.href;
    }
  }
  return { ok: out };
}

/** The stored branding, the defaults filled in. A stored value that is no longer acceptable is ignored. */
export function effectiveBranding(stored: BrandingSettings | undefined, operatorName: string): Branding {
  const checked = (k: keyof BrandingSettings) => {
    const v = stored?.[k];
    if (v === undefined || v === null) return null;
    const r = checkBranding({ [k]: v });
    return 'ok' in r ? (r.ok[k] ?? null) : null;
  };
  return {
    display_name: checked('display_name') ?? operatorName,
    logo_url: checked('logo_url'),
    accent_color: checked('accent_color'),
    return_url: checked('return_url'),
  };
}

// ---- colour ------------------------------------------------------------------------------------------------------

function channels(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

const toHex = (rgb: number[]) => `#${rgb.map((v) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, '0')).join('')}`;

/** WCAG 2 relative luminance of `#rrggbb`. */
export function luminance(hex: string): number {
  const [r, g, b] = channels(hex).map((v) => {
    const s = v / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2 contrast ratio of two `#rrggbb` colours, 1 to 21. */
export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** Text on an accent-coloured button: white when it reads (≥ 4.5:1), else near-black, else black (always ≥ 4.5:1). */
export function textOn(accent: string): string {
  for (const c of ['#ffffff', '#111111', '#000000']) if (contrast(c, accent) >= 4.5) return c;
  return '#000000';
}

/** The accent as text or an outline on a white page: the accent itself if it reads (≥ 4.5:1), else darkened until it does. */
export function inkOnWhite(accent: string): string {
  const rgb = channels(accent);
  for (let k = 0; k <= 20; k++) {
    const c = toHex(rgb.map((v) => v * (1 - k / 20)));
    if (contrast(c, '#ffffff') >= 4.5) return c;
  }
  return '#000000';
}

export interface Palette {
  /** Button and accent background. */
  accent: string;
  /** Text on `accent`. */
  onAccent: string;
  /** Accent-coloured text, links and focus rings on white. */
  ink: string;
  /** A light tint of the accent, for soft backgrounds. */
  tint: string;
}

/** The colours a page uses: from the accent when one is set (and valid), else the page's own default. */
export function palette(accent: string | null | undefined, fallback: Palette): Palette {
  if (!accent || !HEX_COLOR.test(accent)) return fallback;
  const a = accent.toLowerCase();
  const rgb = channels(a);
  return { accent: a, onAccent: textOn(a), ink: inkOnWhite(a), tint: toHex(rgb.map((v) => v + (255 - v) * 0.9)) };
}
