/**
 * Cuts `text` to at most `max` UTF-16 code units and marks the cut with "…" (so the
 * result is at most `max + 1` units). A surrogate pair is never split, so a cut never
 * manufactures a lone surrogate.
 *
 * @example
 * truncate('database.query', 8); // 'database…'
 * truncate('ok', 8);             // 'ok'
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = max;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut -= 1;
  return `${text.slice(0, cut)}…`;
}
