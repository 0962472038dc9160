/** The CLI's plain-text output: aligned columns, and a dash for a missing value. */

/** Rows as aligned columns; the last column is not padded. */
export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  if (all.length === 0) return '';
  const widths = all[0]!.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
}

/** A value as a cell: `-` for null, undefined or an empty string. */
export const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));
