/**
 * `path_within`: is a file path inside a root directory (SPEC §4)?
 *
 * The tool may or may not percent-decode what it receives, so the path is read
 * both ways, as written and percent-decoded once; when the readings disagree
 * (inside one way, outside the other) it is not judged at all, so neither an
 * allow rule nor a deny rule can be slipped past with an encoding. A `%`
 * left after decoding (double encoding) is refused, because a second decode by
 * the tool would change the path again. NUL and backslash are refused outright.
 * Paths must be absolute; `.`, `..` and repeated slashes are resolved with POSIX
 * semantics. Symlinks are not resolved: the policy engine never touches the disk.
 */
import { normalize } from 'node:path/posix';

/** `path_within` outcome: inside, outside, or not a path we are willing to judge (both deny). */
export type WithinResult = 'inside' | 'outside' | 'invalid';

/** Validates and normalises a configured root; returns it or an error message. */
export function normalizeRoot(root: string): { root: string } | { error: string } {
  if (root.length === 0 || !root.startsWith('/')) return { error: `expected an absolute POSIX path such as "/srv/app", got ${JSON.stringify(root)}` };
  if (root.includes('\0') || root.includes('\\') || root.includes('%')) {
    return { error: `root ${JSON.stringify(root)} must not contain NUL, backslash or %` };
  }
  return { root: stripTrailingSlash(normalize(root)) };
}

function stripTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function under(root: string, path: string): boolean {
  if (!path.startsWith('/')) return false;
  const p = stripTrailingSlash(normalize(path));
  if (root === '/') return true;
  // Separator boundary: /srv/app admits /srv/app and /srv/app/x, never /srv/app-shadow.
  return p === root || (p.length > root.length && p.startsWith(root) && p.charCodeAt(root.length) === 47);
}

/**
 * Judges `path` against a root from `normalizeRoot`.
 *
 * @example
 * checkPathWithin('/srv/app', '/srv/app/logs/a.txt'); // 'inside'
 * checkPathWithin('/srv/app', '/srv/app/%2e%2e/etc/passwd'); // 'invalid' (inside as written, outside decoded)
 * checkPathWithin('/srv/app', '/srv/app/../etc/passwd'); // 'outside'
 * checkPathWithin('/srv/app', '/srv/app/a\\b'); // 'invalid'
 */
export function checkPathWithin(root: string, path: string): WithinResult {
  if (path.length === 0 || path.includes('\0') || path.includes('\\')) return 'invalid';
  let decoded = path;
  if (path.includes('%')) {
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return 'invalid';
    }
    if (decoded.includes('%') || decoded.includes('\0') || decoded.includes('\\')) return 'invalid';
  }
  if (!path.startsWith('/') || !decoded.startsWith('/')) return 'invalid';
  const raw = under(root, path);
  if (decoded === path) return raw ? 'inside' : 'outside';
  const dec = under(root, decoded);
  // The two readings disagree: which one the tool uses is unknown, so it is not judged.
  if (raw !== dec) return 'invalid';
  return raw ? 'inside' : 'outside';
}
