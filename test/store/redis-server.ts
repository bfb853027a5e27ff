/**
 * A real `redis-server` (Debian's package) for the Redis store and fleet tests: on a
 * free loopback port, in its own temp directory, without persistence unless asked,
 * stoppable and restartable on the same port for the outage cases. Also a TCP relay
 * that can cut one client's connection to it while the others stay connected.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { tempDir } from '../helpers.js';

export const REDIS_SERVER = 'redis-server';

function installed(): boolean {
  return spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' }).status === 0;
}

export interface RedisServerOptions {
  /** Keep data across a restart (an append-only file, fsynced on every write). */
  persistent?: boolean;
  /** Require this password (`requirepass`). */
  password?: string;
  /** Serve TLS on the port instead of plain TCP, with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
}

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (no password). */
  readonly url: string;
  readonly dir: string;
  /** A plain client for inspecting the server (close it with `quit()`). */
  client(): Redis;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
}

/**
 * A free TCP port on 127.0.0.1, below the kernel's ephemeral range (32768 and up): a
 * server restarted on it must find it still free, and ports the kernel hands out to
 * other processes' `listen(0)` and outgoing connections never land there.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    }
  }
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (${(last as Error).message})`}`);
}

/**
 * Starts a redis-server. Fails (never skips) when it is not installed: the fleet tests
 * are part of the suite, and `.ci/run` installs it.
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!installed()) throw new Error('redis-server is not installed; the Redis store tests need it (Debian: apt-get install -y redis-server)');
  const dir = tempDir('capframe-redis-');
  let child: ChildProcess | undefined;
  let port = 0;
  let log = '';

  const args = (): string[] => {
    const base = ['--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'no', '--loglevel', 'warning'];
    base.push(...(options.persistent === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
    if (options.password !== undefined) base.push('--requirepass', options.password);
    if (options.tls !== undefined) base.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.cert, '--tls-key-file', options.tls.key, '--tls-auth-clients', 'no');
    else base.push('--port', String(port));
    return base;
  };

  const ping = async (): Promise<true | undefined> => {
    if (options.tls !== undefined) {
      // A TLS port cannot be pinged in plain text: a listening socket is enough.
      await new Promise<void>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      });
      return true;
    }
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, ...(options.password !== undefined && { password: options.password }) });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return (await c.ping()) === 'PONG' ? true : undefined;
    } finally {
      c.disconnect();
    }
  };

  const launch = async (): Promise<void> => {
    log = '';
    child = spawn(REDIS_SERVER, args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    const spawned = child;
    children.add(spawned);
    spawned.once('exit', () => children.delete(spawned));
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log}`))));
    exited.catch(() => undefined);
    await Promise.race([until(ping, 10_000, `redis-server on port ${port}`), exited]);
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      child?.kill('SIGKILL');
      if (attempt >= 4) throw error;
    }
  }

  const server: RedisServer = {
    get port() {
      return port;
    },
    get url() {
      return `${options.tls !== undefined ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
    },
    dir,
    client() {
      return new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, ...(options.password !== undefined && { password: options.password }) });
    },
    async stop() {
      const c = child;
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    async start() {
      await launch();
    },
  };
  running.add(server);
  return server;
}

const running = new Set<RedisServer>();
const children = new Set<ChildProcess>();
// A test file that dies without its afterAll must not leave redis-servers behind.
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Stops every redis-server this process started (afterAll). */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
  running.clear();
}

/** A self-signed certificate for 127.0.0.1 made with openssl, for the TLS test. */
export function selfSignedCert(): { cert: string; key: string } {
  const dir = tempDir('capframe-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const conf = join(dir, 'openssl.cnf');
  writeFileSync(conf, '[req]\ndistinguished_name=dn\nx509_extensions=ext\nprompt=no\n[dn]\nCN=127.0.0.1\n[ext]\nsubjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:TRUE\n');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-keyout', key, '-out', cert, '-config', conf], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl could not make a certificate: ${r.stderr}`);
  return { cert, key };
}

/**
 * A TCP relay in front of Redis: clients that connect through it can be cut off
 * (`cut()`: every relayed connection is closed and new ones are dropped at once) and
 * let back in (`restore()`), while clients connected to Redis directly are untouched.
 */
export interface Relay {
  readonly port: number;
  readonly url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startRelay(target: { port: number }): Promise<Relay> {
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((inbound) => {
    if (!open) {
      inbound.destroy();
      return;
    }
    const outbound = connect(target.port, '127.0.0.1');
    sockets.add(inbound).add(outbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const cut = () => {
    open = false;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cut,
    restore() {
      open = true;
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
