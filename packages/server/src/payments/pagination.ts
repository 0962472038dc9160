import { errors } from '../domain/errors.js';

/** Opaque cursor over (created_at, id), newest first. */
export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  const [at, id] = raw.split('|');
  const createdAt = new Date(at ?? '');
  if (!id || Number.isNaN(createdAt.getTime())) throw errors.validation('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { createdAt, id };
}

export function parseTime(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
    throw errors.validation(field, `${field} must be an ISO 8601 date-time, e.g. 2026-01-15T12:00:00Z`, 'invalid_date');
  }
  return d;
}

/**
 * Builds the WHERE clause of a newest-first page: time range, then the cursor. `params` already holds the
 * tenant parameters; returns the SQL fragment and appends its values.
 */
export function pageFilter(
  q: { after?: string; before?: string; cursor?: string },
  params: unknown[],
  afterField = 'created_at.after',
  beforeField = 'created_at.before',
): string {
  let sql = '';
  const after = parseTime(q.after, afterField);
  const before = parseTime(q.before, beforeField);
  if (after) sql += ` AND created_at > $${params.push(after)}`;
  if (before) sql += ` AND created_at < $${params.push(before)}`;
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    sql += ` AND (created_at, id) < ($${params.push(c.createdAt)}, $${params.push(c.id)})`;
  }
  return sql;
}

export function page<T extends { created_at: Date; id: string }>(rows: T[], limit: number): { rows: T[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const slice = more ? rows.slice(0, limit) : rows;
  const last = slice[slice.length - 1];
  return { rows: slice, next_cursor: more && last ? encodeCursor(last.created_at, last.id) : null };
}
