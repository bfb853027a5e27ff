/**
 * Assembles `capframe serve`: policy (hot-reloaded), keys, the store (embedded or
 * Redis), a verifier following the store's revocations, audit log, metrics, upstream
 * pool and the Enforcer. The HTTP and stdio front ends both sit on a Runtime.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { lockAuditLog } from '../audit/owner-lock.js';
import { startAuditSink, type AuditSink } from '../audit/sinks/index.js';
import { openAuditLog } from '../audit/writer.js';
import { backendStatus } from '../backend/select.js';
import { CapframeError } from '../errors.js';
import { LOCK_FILE_NAME, readLockSync } from '../discover/lock.js';
import { watchPolicy } from '../policy/index.js';
import type { Policy } from '../policy/types.js';
import { openKeyStore } from '../store/keys.js';
import { REVOCATIONS_FILE } from '../store/file-store.js';
import { importEmbeddedRevocations } from '../store/import-embedded.js';
import { maxTokenTtl, openStore, storeOptionsFor } from '../store/open.js';
import type { Store } from '../store/types.js';
import type { NonceStore } from '../store/nonces.js';
import { startTracing } from '../telemetry/tracing.js';
import { MAX_DEPTH_LIMIT } from '../token/chain.js';
import { ctiOfReference } from '../verify/token-id.js';
import { createVerifier } from '../verify/verifier.js';
import { Enforcer } from './enforce.js';
import { Sessions } from './mcp/hub.js';
import { StateSince, upstreamHealth, type HealthContributor } from './health.js';
import { createLogger, type Logger } from './log.js';
import { createCapframeMetrics, type CapframeMetrics } from './metrics.js';
import { collectStoreMetrics, storeHealth } from './store-health.js';
import { UpstreamPool } from './upstreams.js';

/** How long start-up waits for the store's revocations before listening anyway (calls are denied until they load). */
const STORE_WAIT_MS = 10_000;

export interface RuntimeOptions {
  policyFile: string;
  log?: Logger;
  /** Upstream handshake and call timeout when a server sets none (ms, default 30 s). */
  defaultTimeoutMs?: number;
  /** How long `stop()` waits for in-flight calls (ms, default 30 s). */
  drainMs?: number;
  /** Audit log path, overriding the policy's `audit.path` and `<state_dir>/audit.log`. */
  auditLog?: string;
  /** Where holder-proof nonces are claimed (default: in memory, for this process). */
  nonceStore?: NonceStore;
}

export interface Runtime {
  policy(): Policy;
  readonly enforcer: Enforcer;
  readonly upstreams: UpstreamPool;
  /** The live client sessions (list changes, resource updates and log levels reach them through it). */
  readonly sessions: Sessions;
  readonly metrics: CapframeMetrics;
  readonly log: Logger;
  readonly backend: string;
  /** The store (embedded or Redis): issued tokens and revocations (the operator console lists them). */
  readonly store: Store;
  /** The issuer keys the verifier trusts, as loaded (published at `/.well-known/capframe-keys`). */
  readonly trustedKeys: readonly Uint8Array[];
  /** The audit log this runtime appends to. */
  readonly auditPath: string;
  /** The parts `/healthz` reports on (the upstreams and the store); it answers 503 while one is not ok. */
  readonly health: readonly HealthContributor[];
  /**
   * Revokes in this instance at once, then through the store (durable, and pushed to
   * every instance and follower). Rejects when the store could not record it: the
   * revocation then holds in this instance only, and the caller must say so.
   * `exp`: the expiry the token claims, when the caller has the token itself.
   */
  revoke(cti: Uint8Array, exp?: number): Promise<boolean>;
  /** Whether the running verifier denies this cti as revoked (what is in force now). */
  isRevoked(cti: Uint8Array): boolean;
  /** The cti named by a `tok_` id or a printable token, if it names one. */
  ctiOf(ref: string): Uint8Array | undefined;
  /** Counts an HTTP request as in flight until it settles. */
  track(work: Promise<unknown>): void;
  /** Re-reads the policy (SIGHUP). */
  reloadPolicy(): Promise<void>;
  /** Drains in-flight work, flushes the audit log, stops upstreams. */
  stop(): Promise<void>;
}

/** Opens (creating) the revocation log for appending, or refuses naming the state directory. */
function checkWritable(stateDir: string, revocations: string): void {
  try {
    closeSync(openSync(revocations, 'a', 0o600));
  } catch (error) {
    throw new CapframeError('store_error', `state directory ${stateDir} is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message} on ${basename(revocations)}): revocations could not be recorded; fix its owner or permissions, or set state_dir`, { cause: error });
  }
}

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const log = options.log ?? createLogger();
  log.info('capframe runtime starting', { policy: options.policyFile, pid: process.pid });
  // Set once the pool exists; a reload before then is picked up by building the pool from the current policy.
  let pool: UpstreamPool | undefined;
  // Set once the sessions exist; events before then reach no session.
  let sessions: Sessions | undefined;
  let enforcerRef: Enforcer | undefined;
  const watcher = watchPolicy(options.policyFile, {
    onReload: (p) => {
      log.info('policy reloaded', { file: p.file, rules: p.rules.length });
      for (const warning of p.warnings) log.warn(warning, { file: p.file });
      if (p.store !== initial.store || p.onStoreFailure !== initial.onStoreFailure || p.redis.prefix !== initial.redis.prefix || p.redis.revocationGrace !== initial.redis.revocationGrace || p.stateDir !== initial.stateDir) {
        log.warn('store settings changed (store, on_store_failure, redis, state_dir); they apply after a restart', { file: p.file });
      }
      // SPEC §6: a reload applies `servers` changes (started, stopped, restarted; each logged by the pool).
      void pool?.reconfigure(p.servers).catch((error: unknown) => log.error('applying the reloaded servers failed', { error: (error as Error).message }));
      // What each session may see follows the new rules.
      sessions?.allListsChanged();
    },
    onError: (e) => log.error('policy change rejected; the running policy stays in force', { error: e.message }),
  });
  const policy = watcher.current;
  const initial = policy();
  for (const warning of initial.warnings) log.warn(warning, { file: initial.file });

  // What start-up has opened, undone in reverse if a later step fails.
  const undo: (() => unknown)[] = [() => watcher.close()];
  const unwind = async () => {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
  };
  let keys: ReturnType<typeof openKeyStore>;
  let store: Store;
  let verifier: ReturnType<typeof createVerifier>;
  let trustedKeys: readonly Uint8Array[];
  let auditPath: string;
  let audit: Awaited<ReturnType<typeof openAuditLog>>;
  let unlockAudit: () => void;
  try {
    keys = openKeyStore(initial.stateDir);
    if (keys.ensureIssuerKey()) log.info('created issuer key', { path: keys.paths.issuerKey });
    const opened = await openStore({ ...storeOptionsFor(initial), longLived: true, log });
    store = opened;
    undo.push(() => opened.close());
    log.info('store opened', { store: store.kind, location: store.location, on_store_failure: initial.onStoreFailure });
    // A proxy that could not record a revocation (or a minted token) must not serve.
    if (store.kind === 'file') checkWritable(initial.stateDir, join(initial.stateDir, REVOCATIONS_FILE));
    if (store.kind === 'redis') {
      if (store.health().up) {
        const imported = await importEmbeddedRevocations(initial.stateDir, store, maxTokenTtl(initial));
        if (imported > 0) log.info('copied recent revocations of the embedded store into redis', { count: imported, state_dir: initial.stateDir });
      } else {
        log.warn('redis unreachable at start: recent revocations of the embedded store (if any) were not copied into it', { state_dir: initial.stateDir });
      }
    }
    // Holder-proof nonces: the store's (in memory when embedded, shared in Redis), unless the caller injects one.
    // The verifier accepts any chain depth the format allows; the enforcer applies the
    // policy's max_delegation_depth per call, so a reload changes it at once.
    const loadedKeys = Object.freeze(keys.trustedKeys());
    trustedKeys = loadedKeys;
    const following = createVerifier({
      keys: [...loadedKeys],
      nonceStore: options.nonceStore ?? store.nonces,
      maxDepth: MAX_DEPTH_LIMIT,
      revocations: store,
      onStoreFailure: initial.onStoreFailure,
    });
    verifier = following;
    undo.push(() => following.close());
    await waitForRevocations(verifier.ready(), store, log);
    auditPath = options.auditLog ?? initial.audit.path ?? join(initial.stateDir, 'audit.log');
    mkdirSync(dirname(auditPath), { recursive: true, mode: 0o700 });
    unlockAudit = lockAuditLog(auditPath);
    undo.push(unlockAudit);
    // A log torn by a crash is kept as evidence and a new chain started: a proxy that
    // cannot start after kill -9 would be an outage (other damage is still refused).
    audit = await openAuditLog(auditPath, { logArgs: initial.audit.logArgs, syncIntervalMs: initial.audit.syncMs, recoverTornTail: true });
  } catch (error) {
    await unwind();
    throw error;
  }
  if (audit.recovered !== undefined) {
    log.warn('the audit log ended in a torn line (a crash mid-write); it was kept unchanged and a new chain started', {
      kept_as: audit.recovered.renamedTo,
      last_good_seq: audit.recovered.lastSeq,
      last_good_sha256: audit.recovered.head,
    });
  }
  const metrics = createCapframeMetrics();
  collectStoreMetrics(store, metrics);
  metrics.registry.onCollect(() => metrics.revokedTokens.set(verifier.revokedCount()));
  // Sinks follow the audit file (the source of truth); the call path never waits for them.
  const sinks: AuditSink[] = initial.audit.sinks.map((config) =>
    startAuditSink(config, {
      auditPath,
      cursorDir: join(initial.stateDir, 'sinks'),
      events: {
        log: (level, msg, fields) => log[level](msg, fields),
        delivered: (sink, n) => metrics.auditSinkDelivered.labels(sink).inc(n),
        failed: (sink) => metrics.auditSinkFailures.labels(sink).inc(),
        skipped: (sink, n) => metrics.auditSinkSkipped.labels(sink).inc(n),
      },
    }),
  );
  if (sinks.length > 0) log.info('audit sinks started', { sinks: sinks.map((s) => s.name) });
  metrics.registry.onCollect(() => {
    for (const sink of sinks) metrics.auditSinkLag.labels(sink.name).set(Math.max(0, audit.lastSeq - sink.deliveredSeq));
  });

  const lockFile = join(dirname(initial.file), LOCK_FILE_NAME);
  const lock = readLockSync(lockFile);
  if (lock !== undefined) log.info('tool definitions pinned', { lock: lockFile, tools: Object.keys(lock.tools).length });
  const upstreamSince = new StateSince();
  const upstreams = new UpstreamPool(policy().servers, {
    cwd: dirname(initial.file),
    defaultTimeoutMs: options.defaultTimeoutMs ?? 30_000,
    ...(lock !== undefined && { lock }),
    log,
    onChange: (server, up) => {
      metrics.upstreamUp.labels(server).set(up ? 1 : 0);
      upstreamSince.mark(server, up);
    },
    onListChanged: (kind) => sessions?.listChanged(kind),
    onResourceUpdated: (server, uri) => sessions?.resourceUpdated(server, uri),
    onRelayRefused: ({ server, method, reason }) => {
      try {
        enforcerRef?.record({ allowed: false, code: 'no_rule', reason: `${method} from upstream "${server}" refused: ${reason}`, agent: null, tokenId: null }, null, {}, process.hrtime.bigint());
      } catch (error) {
        log.error('audit log failed to record a refused relay', { server, error: (error as Error).message });
      }
    },
    screen: () => policy().screen,
  });
  metrics.registry.onCollect(() => {
    for (const [server, count] of Object.entries(upstreams.withheldCounts())) metrics.toolsWithheld.labels(server).set(count);
  });
  pool = upstreams;
  log.info('connecting upstreams', { servers: Object.keys(policy().servers) });
  await upstreams.start();

  // The OpenTelemetry SDK is loaded only when an OTLP endpoint is configured.
  const tracing = await startTracing(log);
  const enforcer = new Enforcer({ policy, verifier, issuer: keys.issuerKey(), store, upstreams, audit, metrics, limiter: store.limiter, log, ...(tracing !== undefined && { tracing }) });
  enforcerRef = enforcer;
  sessions = new Sessions(upstreams, policy, log);

  const pending = new Set<Promise<unknown>>();
  const status = backendStatus();
  log.info('capframe runtime started', { policy: initial.file, backend: status.name, backend_reason: status.reason, state_dir: initial.stateDir });

  return {
    policy,
    enforcer,
    upstreams,
    sessions,
    metrics,
    log,
    backend: status.name,
    store,
    trustedKeys,
    auditPath,
    health: [upstreamHealth(upstreams, upstreamSince), storeHealth(store, () => initial.onStoreFailure)],
    async revoke(cti, exp) {
      // Here first: even if the store fails, this instance denies the token from now on.
      verifier.revoke(cti);
      return store.revoke(cti, exp === undefined ? {} : { exp });
    },
    isRevoked: (cti) => verifier.isRevoked(cti),
    ctiOf(ref) {
      try {
        return ctiOfReference(ref);
      } catch (error) {
        if (error instanceof CapframeError) return undefined;
        throw error;
      }
    },
    track(work) {
      pending.add(work);
      void work.finally(() => pending.delete(work));
    },
    reloadPolicy: () => watcher.reload(),
    async stop() {
      const deadline = Date.now() + (options.drainMs ?? 30_000);
      while ((pending.size > 0 || enforcer.inFlight > 0) && Date.now() < deadline) {
        await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 50))]);
      }
      watcher.close();
      await verifier.close();
      await audit.close();
      // After the last line is on disk: each sink gets a moment to send it; what is left goes out after the next start.
      await Promise.all(sinks.map((sink) => sink.stop(2000)));
      unlockAudit();
      await upstreams.close();
      await store.close();
      await tracing?.shutdown().catch((error: unknown) => log.warn('tracing did not flush', { error: (error as Error).message }));
      log.info('capframe runtime stopped');
    },
  };
}

/**
 * Waits (boundedly) for the store's revocations before serving. An embedded log that
 * cannot be read refuses the start, as before; a Redis store that is not reachable yet
 * lets the proxy listen, denying every call until the revocations are loaded.
 */
async function waitForRevocations(ready: Promise<void>, store: Store, log: Logger): Promise<void> {
  const health = store.health();
  if (store.kind === 'file' && !health.up && health.reason !== undefined) throw new CapframeError('store_error', health.reason);
  let timer: NodeJS.Timeout | undefined;
  const loaded = await Promise.race([ready.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), STORE_WAIT_MS)))]);
  clearTimeout(timer);
  if (loaded) return;
  if (store.kind === 'file') throw new CapframeError('store_error', store.health().reason ?? `cannot read the revocations in ${store.location}`);
  log.warn('store not reachable yet; listening, and denying every call until the revocations are loaded', { store: store.location, reason: store.health().reason });
}
