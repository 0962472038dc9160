/** What the browser scripts share: how they report bad options: `[PushCash] …` on the console, never an exception. */
export function logError(message: string, cause?: unknown): void {
  if (cause === undefined) console.error('[PushCash] ' + message);
  else console.error('[PushCash] ' + message, cause);
}

/** A value as a message shows it: strings quoted, objects by kind. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** The first element the `selector` option matches, or what is wrong with the option. */
export function findContainer(selector: unknown): Element | string {
  if (typeof selector !== 'string' || !selector.trim()) return `selector must be a non-empty CSS selector string; got ${shown(selector)}`;
  let container: Element | null;
  try {
    container = document.querySelector(selector);
  } catch {
    return `selector ${JSON.stringify(selector)} is not a valid CSS selector`;
  }
  return container ?? `no element matches selector ${JSON.stringify(selector)}`;
}
