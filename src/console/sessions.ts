/**
 * Console sessions: a random id in an HTTP-only cookie, kept server-side with an idle and
 * an absolute expiry, each with its own CSRF token. Sessions are held under the SHA-256 of
 * their id, so the table (a heap dump, a debugger) does not hold usable cookies.
 */
import { randomBytes } from 'node:crypto';

import { sha256Hex } from '../lib/canonical-json.js';
import { sameSecret } from '../lib/same-secret.js';

export interface ConsoleSession {
  /** Short, non-secret handle for logs: the first 8 hex digits of the id's hash. */
  readonly handle: string;
  /** Sent by the page in `X-CSRF-Token` on every state change. */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
  /** Set once the session is logged out, expired or evicted. */
  ended: boolean;
  /** Closes the session's open streams (on logout and expiry). */
  readonly closers: Set<() => void>;
}

export interface SessionLimits {
  /** A session unused this long ends (ms). */
  idleMs: number;
  /** A session ends this long after login, used or not (ms). */
  absoluteMs: number;
  /** Sessions at most; a login beyond it ends the least recently used one. */
  max: number;
}

export const DEFAULT_CONSOLE_SESSION_LIMITS: SessionLimits = Object.freeze({ idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000, max: 64 });

/**
 * The server-side session table.
 *
 * @example
 * const sessions = new ConsoleSessions(DEFAULT_CONSOLE_SESSION_LIMITS);
 * const { id } = sessions.create();          // goes into the cookie
 * sessions.get(id)?.csrf;                    // the page's CSRF token
 */
export class ConsoleSessions {
  private readonly table = new Map<string, ConsoleSession>();

  constructor(
    readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** A new session; its id goes into the cookie and is never stored. */
  create(): { id: string; session: ConsoleSession } {
    this.sweep();
    while (this.table.size >= this.limits.max) {
      // Map order is insertion order and get() re-inserts: the first entry is the least recently used.
      const oldest = this.table.keys().next().value as string;
      this.end(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const key = sha256Hex(id);
    const now = this.now();
    const session: ConsoleSession = { handle: key.slice(0, 8), csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeen: now, ended: false, closers: new Set() };
    this.table.set(key, session);
    return { id, session };
  }

  /** The live session for a cookie value, marked as used; undefined when unknown or expired. */
  get(id: string | undefined, touch = true): ConsoleSession | undefined {
    if (id === undefined || id === '' || id.length > 128) return undefined;
    const key = sha256Hex(id);
    const session = this.table.get(key);
    if (session === undefined) return undefined;
    if (this.expired(session)) {
      this.end(key);
      return undefined;
    }
    if (touch) {
      session.lastSeen = this.now();
      this.table.delete(key);
      this.table.set(key, session);
    }
    return session;
  }

  /** Whether a session object is still in force (streams check this on their heartbeat). */
  alive(session: ConsoleSession): boolean {
    return !session.ended && !this.expired(session);
  }

  /** Constant-time check of a presented CSRF token. */
  csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
    return sameSecret(presented, session.csrf);
  }

  /** Ends the session of a cookie value (logout). */
  destroy(id: string | undefined): void {
    if (id === undefined || id === '' || id.length > 128) return;
    this.end(sha256Hex(id));
  }

  /** Ends expired sessions. */
  sweep(): void {
    for (const [key, session] of this.table) if (this.expired(session)) this.end(key);
  }

  /** Ends every session (server closing). */
  clear(): void {
    for (const key of [...this.table.keys()]) this.end(key);
  }

  private expired(session: ConsoleSession): boolean {
    const now = this.now();
    return now - session.lastSeen >= this.limits.idleMs || now - session.createdAt >= this.limits.absoluteMs;
  }

  private end(key: string): void {
    const session = this.table.get(key);
    if (session === undefined) return;
    this.table.delete(key);
    session.ended = true;
    for (const close of [...session.closers]) close();
    session.closers.clear();
  }
}
