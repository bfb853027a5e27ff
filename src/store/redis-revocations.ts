/**
 * The revocation feed of the Redis store: a sorted set of `tok_` ids scored by the
 * time each may be forgotten (its token's expiry plus grace), and a pub/sub channel
 * that carries each new revocation to every follower at once.
 *
 * A follower subscribes first and then reads the set, so a revocation made while it
 * loads arrives by one path or the other (the revoke script adds and publishes in one
 * atomic step). The same happens after every reconnect (a resync), so nothing published
 * while it was disconnected is missed. Until then it is not current, and says why.
 */
import type { Redis } from './redis-client.js';
import type { RevocationFollow, RevocationHandlers, StoreLog } from './types.js';

/** Ids per round trip when loading: Redis spends about a millisecond on a page. */
const PAGE = 20_000;
/** A `tok_` id: 4 + 22 base64url characters. */
const ID_LENGTH = 26;

/**
 * Reads every id of the revocation set as 16-byte cti values, concatenated. Pages by
 * rank from the top (highest drop time first), which is safe while others write:
 * trimming removes the lowest ranks (expired ids) and leaves the ranks still to read
 * where they were, and an insertion can only make a page repeat an id, never skip one
 * (it is pushed over pub/sub anyway). Ids past their drop time but not trimmed yet are
 * included: harmless, their tokens have expired. Rejects on a member that is not a
 * `tok_` id.
 */
export async function loadRevoked(client: Redis, key: string): Promise<Uint8Array> {
  const pages: Buffer[] = [];
  let total = 0;
  for (let offset = 0; ; offset += PAGE) {
    const members = await client.zrange(key, String(-(offset + PAGE)), String(-(offset + 1)));
    const page = Buffer.alloc(members.length * 16);
    for (let i = 0; i < members.length; i++) {
      if (!writeId(page, members[i]!, i * 16)) {
        throw new Error(`the revocation set ${key} holds "${members[i]!.slice(0, 40)}", which is not a tok_ id; refusing to guess what it revokes`);
      }
    }
    pages.push(page);
    total += page.length;
    if (members.length < PAGE) break;
  }
  const out = Buffer.concat(pages, total);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

const ID_BODY = /^[A-Za-z0-9_-]{22}$/;

/** Writes the cti of a `tok_` id at `offset`; false when `id` is not one. */
function writeId(buf: Buffer, id: string, offset: number): boolean {
  if (id.length !== ID_LENGTH || !id.startsWith('tok_')) return false;
  const body = id.slice(4);
  // 22 characters decode to 16 bytes plus 4 bits that canonical base64url leaves zero.
  if (!ID_BODY.test(body) || 'AQgw'.indexOf(body[21]!) < 0) return false;
  return buf.write(body, offset, 16, 'base64url') === 16;
}

/** The cti of a pushed `tok_` id, or undefined. */
function idBytes(id: string): Uint8Array | undefined {
  const buf = Buffer.alloc(16);
  return writeId(buf, id, 0) ? new Uint8Array(buf.buffer, buf.byteOffset, 16) : undefined;
}

export interface FeedOptions {
  /** The connection used for pub/sub only (this feed owns it). */
  subscriber: Redis;
  /** A command connection for loading the set. */
  commands: Redis;
  key: string;
  channel: string;
  /** Shown in reasons and logs; no password. */
  where: string;
  log?: StoreLog;
  /** Called whenever the feed's own state changes. */
  onState?(current: boolean, reason?: string): void;
  /** Called after a lost subscriber connection is back (for the reconnect count). */
  onReconnect?(): void;
  /** PING the subscriber this often to find a half-open connection (ms, default 2000); 0 disables. */
  pingEveryMs?: number;
}

/** Follows the revocation set over one subscriber connection, for any number of handlers. */
export class RedisRevocationFeed {
  private readonly handlers = new Set<RevocationHandlers>();
  private current = false;
  private reason = 'connecting';
  /** Bumped on every loss: a load started before it must not mark the feed current. */
  private epoch = 0;
  private syncing = false;
  private everReady = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly pinger: NodeJS.Timeout | undefined;

  constructor(private readonly o: FeedOptions) {
    const sub = o.subscriber;
    sub.on('ready', () => {
      if (this.everReady) o.onReconnect?.();
      this.everReady = true;
      void this.resync();
    });
    sub.on('close', () => this.lost(`the subscription to ${o.where} was lost`));
    sub.on('error', (error: Error) => {
      if (this.current) o.log?.warn('redis subscriber error', { store: o.where, error: error.message });
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel !== o.channel) return;
      const cti = idBytes(message);
      if (cti === undefined) {
        o.log?.error('ignoring a revocation message that is not a tok_ id', { store: o.where, channel });
        return;
      }
      for (const h of this.handlers) h.onRevoked(cti);
    });
    // A loader that failed while the subscriber stayed up is retried when commands come back.
    o.commands.on('ready', () => {
      if (!this.current && sub.status === 'ready') void this.resync();
    });
    const pingEveryMs = o.pingEveryMs ?? 2000;
    if (pingEveryMs > 0) {
      this.pinger = setInterval(() => this.ping(pingEveryMs * 2), pingEveryMs);
      this.pinger.unref();
    }
    sub.connect().catch(() => undefined); // failures arrive as events; ioredis retries
  }

  get isCurrent(): boolean {
    return this.current;
  }

  get why(): string {
    return this.reason;
  }

  follow(handlers: RevocationHandlers): RevocationFollow {
    let resolveReady!: () => void;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    const wrapped: RevocationHandlers = {
      onRevoked: (ids) => handlers.onRevoked(ids),
      onState: (current, reason) => {
        handlers.onState(current, reason);
        if (current) resolveReady();
      },
    };
    this.handlers.add(wrapped);
    wrapped.onState(false, this.reason);
    if (this.current) void this.loadFor(wrapped);
    return {
      ready,
      close: async () => {
        this.handlers.delete(wrapped);
      },
    };
  }

  /** Everything in the set for a handler that joined while the feed was current. */
  private async loadFor(h: RevocationHandlers): Promise<void> {
    const epoch = this.epoch;
    try {
      const ids = await loadRevoked(this.o.commands, this.o.key);
      if (!this.handlers.has(h)) return;
      h.onRevoked(ids);
      if (epoch === this.epoch && this.current) h.onState(true);
    } catch (error) {
      this.o.log?.error('cannot load the revocation set', { store: this.o.where, error: (error as Error).message });
      if (this.current) this.lost(`cannot load the revocation set from ${this.o.where}: ${(error as Error).message}`);
    }
  }

  private setState(current: boolean, reason: string): void {
    const changed = current !== this.current;
    this.current = current;
    this.reason = reason;
    if (changed) this.o.onState?.(current, current ? undefined : reason);
    for (const h of this.handlers) h.onState(current, current ? undefined : reason);
  }

  private lost(reason: string): void {
    this.epoch++;
    if (this.closed) return;
    if (this.current) this.o.log?.warn('revocation feed lost; calls wait for a resync', { store: this.o.where, reason });
    this.setState(false, reason);
  }

  /** Subscribe, then load the whole set, then current. Retried until it succeeds. */
  private async resync(): Promise<void> {
    if (this.syncing || this.closed) return;
    this.syncing = true;
    clearTimeout(this.retry);
    const epoch = this.epoch;
    try {
      await this.o.subscriber.subscribe(this.o.channel);
      const started = performance.now();
      const ids = await loadRevoked(this.o.commands, this.o.key);
      if (epoch !== this.epoch || this.closed) return; // lost meanwhile; the next 'ready' starts over
      for (const h of this.handlers) h.onRevoked(ids);
      this.o.log?.info('revocation feed current', { store: this.o.where, revoked: ids.length / 16, load_ms: Math.round(performance.now() - started) });
      this.setState(true, '');
    } catch (error) {
      const reason = `cannot load the revocation set from ${this.o.where}: ${(error as Error).message}`;
      if (!this.closed) {
        this.o.log?.warn('revocation resync failed; retrying', { store: this.o.where, error: (error as Error).message });
        this.setState(false, reason);
        this.retry = setTimeout(() => void this.resync(), 500);
        this.retry.unref();
      }
    } finally {
      this.syncing = false;
    }
  }

  /** A PING that does not come back in time means a half-open connection: drop it and reconnect. */
  private ping(deadlineMs: number): void {
    const sub = this.o.subscriber;
    if (sub.status !== 'ready') return;
    let answered = false;
    const timer = setTimeout(() => {
      if (answered || sub.status !== 'ready') return;
      this.o.log?.warn('redis subscriber did not answer PING; reconnecting', { store: this.o.where });
      sub.disconnect(true);
    }, deadlineMs);
    timer.unref();
    sub.ping().then(
      () => {
        answered = true;
        clearTimeout(timer);
      },
      () => clearTimeout(timer),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.epoch++;
    clearTimeout(this.retry);
    if (this.pinger !== undefined) clearInterval(this.pinger);
    this.handlers.clear();
    this.o.subscriber.disconnect();
  }
}
