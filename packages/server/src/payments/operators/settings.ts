import { DEFAULT_PAYLOAD_VERSION } from '@cashwire/webhooks';
import { checkBranding, effectiveBranding, type Branding, type BrandingSettings } from '../../domain/branding.js';
import { DEFAULT_SCHEDULES } from '../../domain/retry.js';
import { DEFAULT_CLI_RATE_LIMIT } from '../../api/auth.js';
import { errors } from '../../domain/errors.js';
import type { OperatorSettings } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';
import { userLimits } from '../users/users.js';

/** The settings in force: the operator's own, over the defaults (the branding's display name defaults to the operator's name). */
export function effectiveSettings(deps: Deps, settings: OperatorSettings, operatorName = '') {
  return {
    payload_version: settings.payload_version ?? DEFAULT_PAYLOAD_VERSION,
    retry_schedules: Object.fromEntries(
      Object.entries(DEFAULT_SCHEDULES).map(([name, s]) => [name, { ...s, ...(settings.retry_schedules?.[name as keyof typeof DEFAULT_SCHEDULES] ?? {}) }]),
    ),
    rate_limits: { cli: DEFAULT_CLI_RATE_LIMIT, ...deps.config.rateLimits, ...(settings.rate_limits ?? {}) },
    limits: userLimits({ settings } as Caller),
    allowed_origins: settings.allowed_origins ?? null,
    apple_pay: { merchant_identifiers: settings.apple_pay?.merchant_identifiers ?? [], total_label: settings.apple_pay?.total_label ?? null,
      bt_application_key: settings.apple_pay?.bt_application_key ?? null, bt_merchant_registration_id: settings.apple_pay?.bt_merchant_registration_id ?? null },
    branding: effectiveBranding(settings.branding, operatorName),
  };
}

/** The hosted pages' branding for an operator whose settings and name are at hand (a page's own query has them). */
export function pageBranding(settings: OperatorSettings | null | undefined, operatorName: string): Branding {
  return effectiveBranding(settings?.branding, operatorName);
}

/** The hosted pages' branding of one operator, read from its settings. */
export async function brandingOf(deps: Deps, operatorId: string): Promise<Branding> {
  const { rows } = await deps.db.query<{ name: string; settings: OperatorSettings }>('SELECT name, settings FROM operators WHERE id = $1', [operatorId]);
  return pageBranding(rows[0]?.settings, rows[0]?.name ?? '');
}

/** A branding patch, checked field by field (domain/branding.ts); the first bad field is a 400 naming it, e.g. `branding.logo_url`. */
function checkBrandingPatch(patch: BrandingSettings): BrandingSettings {
  const r = checkBranding(patch);
  if ('problem' in r) throw errors.validation(`branding.${r.problem.field}`, r.problem.message, r.problem.code);
  return r.ok;
}

/** Merges a branding patch into the stored one: a value replaces, null removes (back to the default). */
function mergeBranding(cur: BrandingSettings | undefined, patch: BrandingSettings): BrandingSettings {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...cur, ...checkBrandingPatch(patch) })) if (typeof v === 'string') merged[k] = v;
  return merged;
}

/** Each allowed origin is an origin exactly: scheme, host and port, nothing else (it goes into a CSP frame-ancestors). */
function checkOrigins(origins: string[]): string[] {
  return origins.map((o, k) => {
    let u: URL | undefined;
    try {
      u = new URL(o);
    } catch {
      /* below */
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== o.replace(/\/$/, '')) {
      throw errors.validation(`allowed_origins/${k}`, `${JSON.stringify(o)} is not an origin such as "https://casino.example" (scheme, host, optional port; no path)`, 'invalid_value');
    }
    return u.origin;
  });
}

export async function getSettings(deps: Deps, caller: Caller) {
  const { rows } = await deps.db.query<{ settings: OperatorSettings }>('SELECT settings FROM operators WHERE id = $1', [caller.operatorId]);
  return effectiveSettings(deps, rows[0]!.settings, caller.operatorName);
}

/** Merges the patch into the stored settings, one level deep for each object (a schedule's fields, each rate limit). */
export async function patchSettings(deps: Deps, caller: Caller, patch: OperatorSettings) {
  const { rows } = await deps.db.query<{ settings: OperatorSettings }>('SELECT settings FROM operators WHERE id = $1 FOR UPDATE', [caller.operatorId]);
  const cur = rows[0]!.settings;
  const next: OperatorSettings = {
    ...cur,
    ...(patch.payload_version ? { payload_version: patch.payload_version } : {}),
    ...(patch.rate_limits ? { rate_limits: { ...cur.rate_limits, ...patch.rate_limits } } : {}),
    ...(patch.limits ? { limits: { ...cur.limits, ...patch.limits } } : {}),
    ...(patch.allowed_origins ? { allowed_origins: [...new Set(checkOrigins(patch.allowed_origins))] } : {}),
    ...(patch.apple_pay ? { apple_pay: { ...cur.apple_pay, ...patch.apple_pay } } : {}),
    ...(patch.branding ? { branding: mergeBranding(cur.branding, patch.branding) } : {}),
    ...(patch.retry_schedules
      ? {
          retry_schedules: Object.fromEntries(
            [...new Set([...Object.keys(cur.retry_schedules ?? {}), ...Object.keys(patch.retry_schedules)])].map((k) => [
              k,
              { ...(cur.retry_schedules as Record<string, object> | undefined)?.[k], ...(patch.retry_schedules as Record<string, object>)[k] },
            ]),
          ),
        }
      : {}),
  };
  await deps.db.query('UPDATE operators SET settings = $2 WHERE id = $1', [caller.operatorId, JSON.stringify(next)]);
  return effectiveSettings(deps, next, caller.operatorName);
}
