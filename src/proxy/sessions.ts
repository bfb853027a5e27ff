/**
 * The MCP sessions of `capframe serve`, each bound to the identity that opened it (SPEC §6):
 * an agent's name, or nobody when the policy defines no agents (pure capability mode). A
 * request on a session from any other identity sees the same thing as an unknown session.
 *
 * Sessions cost memory before anything is authorized, so their number is bounded three
 * ways (in total, per agent, and anonymous ones) and a session is closed when it never got
 * past `initialize`, sat idle too long, or its agent left the policy.
 */

/** Who a session belongs to: an agent's name, or undefined for anonymous (capability mode). */
export type SessionOwner = string | undefined;

export interface SessionLimits {
  /** Open sessions at most, all owners together. */
  total: number;
  /** Open sessions per agent. */
  perAgent: number;
  /** Open anonymous sessions (no agents in the policy), all together. */
  anonymous: number;
  /** A session with no request after its `initialize` is closed after this long (ms). */
  handshakeMs: number;
  /** A session with no request for this long is closed (ms). */
  idleMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  total: 10_000,
  perAgent: 32,
  anonymous: 64,
  handshakeMs: 30_000,
  idleMs: 30 * 60_000,
};

/** What a session holds (the MCP transport); closing it must end up in `SessionTable.remove`. */
export interface Closable {
  close(): Promise<void> | void;
}

export interface Session<T extends Closable> {
  readonly id: string;
  readonly owner: SessionOwner;
  readonly value: T;
  readonly openedAt: number;
  lastSeen: number;
  /** A request arrived after the one that opened it. */
  established: boolean;
}

/** Which bound refused a new session, with an answer for the client. */
export interface SessionRefusal {
  limit: 'total' | 'per_agent' | 'anonymous';
  /** 503 when the server as a whole is full, 429 when this agent is. */
  status: 429 | 503;
  message: string;
}

/** A place held for a session being opened; `release()` gives it back unless it was opened. */
export interface Reservation<T extends Closable> {
  open(id: string, value: T): Session<T>;
  release(): void;
}

export class SessionTable<T extends Closable> {
  private readonly sessions = new Map<string, Session<T>>();
  private readonly perAgent = new Map<string, number>();
  private anonymous = 0;
  /** Sessions plus reservations. */
  private total = 0;

  constructor(
    readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Open sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * The session `id` when `owner` opened it, marked as used; undefined when there is no
   * such session or it belongs to someone else (the caller answers both alike).
   */
  use(id: string, owner: SessionOwner): Session<T> | undefined {
    const session = this.sessions.get(id);
    if (session === undefined || session.owner !== owner) return undefined;
    session.lastSeen = this.now();
    session.established = true;
    return session;
  }

  /** Which bound would refuse a new session for `owner` now, if any. */
  refusal(owner: SessionOwner): SessionRefusal | undefined {
    const { limits } = this;
    if (this.total >= limits.total) {
      return { limit: 'total', status: 503, message: `too many open sessions (${limits.total}, --max-sessions); try again later` };
    }
    if (owner === undefined) {
      if (this.anonymous >= limits.anonymous) {
        return {
          limit: 'anonymous',
          status: 503,
          message: `too many open anonymous sessions (${limits.anonymous}, --max-anonymous-sessions); close one (DELETE with its Mcp-Session-Id) or try again later`,
        };
      }
    } else if ((this.perAgent.get(owner) ?? 0) >= limits.perAgent) {
      return {
        limit: 'per_agent',
        status: 429,
        message: `agent "${owner}" has too many open sessions (${limits.perAgent}, --max-sessions-per-agent); close one (DELETE with its Mcp-Session-Id) or wait for idle ones to expire`,
      };
    }
    return undefined;
  }

  /** Holds a place for a session `owner` is opening, or says which bound refuses it. */
  reserve(owner: SessionOwner): Reservation<T> | SessionRefusal {
    const refused = this.refusal(owner);
    if (refused !== undefined) return refused;
    this.count(owner, 1);
    let state: 'held' | 'opened' | 'released' = 'held';
    return {
      open: (id, value) => {
        if (state !== 'held') throw new Error(`session reservation already ${state}`);
        state = 'opened';
        const at = this.now();
        const session: Session<T> = { id, owner, value, openedAt: at, lastSeen: at, established: false };
        this.sessions.set(id, session);
        return session;
      },
      release: () => {
        if (state !== 'held') return;
        state = 'released';
        this.count(owner, -1);
      },
    };
  }

  /** Forgets a session (its transport closed). Idempotent. */
  remove(id: string): void {
    const session = this.sessions.get(id);
    if (session === undefined) return;
    this.sessions.delete(id);
    this.count(session.owner, -1);
  }

  /**
   * Closes every session that never got past `initialize` in time, sat idle too long, or
   * whose owner `stillValid` no longer accepts (an agent removed from the policy). Returns
   * how many it closed.
   */
  sweep(stillValid: (owner: SessionOwner) => boolean): number {
    const now = this.now();
    const { handshakeMs, idleMs } = this.limits;
    let closed = 0;
    for (const session of [...this.sessions.values()]) {
      const expired = session.established ? now - session.lastSeen >= idleMs : now - session.openedAt >= handshakeMs;
      if (expired || !stillValid(session.owner)) {
        this.close(session);
        closed += 1;
      }
    }
    return closed;
  }

  /** Closes every session. */
  closeAll(): void {
    for (const session of [...this.sessions.values()]) this.close(session);
  }

  private close(session: Session<T>): void {
    this.remove(session.id);
    void Promise.resolve()
      .then(() => session.value.close())
      .catch(() => undefined);
  }

  private count(owner: SessionOwner, delta: 1 | -1): void {
    this.total += delta;
    if (owner === undefined) this.anonymous += delta;
    else {
      const n = (this.perAgent.get(owner) ?? 0) + delta;
      if (n === 0) this.perAgent.delete(owner);
      else this.perAgent.set(owner, n);
    }
  }
}
