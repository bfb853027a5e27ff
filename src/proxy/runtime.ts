/**
 * Assembles `capframe serve`: policy (hot-reloaded), embedded store, verifier with
 * live revocation, audit log, metrics, upstream pool and the Enforcer. The HTTP and
 * stdio front ends both sit on a Runtime.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { lockAuditLog } from '../audit/owner-lock.js';
import { openAuditLog } from '../audit/writer.js';
import { backendStatus } from '../backend/select.js';
import { CapframeError } from '../errors.js';
import { LOCK_FILE_NAME, readLockSync } from '../discover/lock.js';
import { watchPolicy } from '../policy/index.js';
import type { Policy } from '../policy/types.js';
import { openFileStore, type FileStore } from '../store/file-store.js';
import { createMemoryNonceStore, type NonceStore } from '../store/nonces.js';
import { MAX_DEPTH_LIMIT } from '../token/chain.js';
import { ctiOfReference } from '../verify/token-id.js';
import { createVerifier } from '../verify/verifier.js';
import { Enforcer } from './enforce.js';
import { StateSince, upstreamHealth, type HealthContributor } from './health.js';
import { createLogger, type Logger } from './log.js';
import { createCapframeMetrics, type CapframeMetrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import { watchRevocations } from './revocation-watch.js';
import { UpstreamPool } from './upstreams.js';

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
  readonly metrics: CapframeMetrics;
  readonly log: Logger;
  readonly backend: string;
  /** The parts `/healthz` reports on; it answers 503 while one is not ok. */
  readonly health: readonly HealthContributor[];
  /** Revokes through the store (durable) and the verifier (immediate). */
  revoke(cti: Uint8Array): boolean;
  /** Whether the running verifier denies this cti as revoked (what is in force now). */
  isRevoked(cti: Uint8Array): boolean;
  /** The store issued tokens and revocations are read from (the operator console lists them). */
  readonly store: FileStore;
  /** The audit log this runtime appends to. */
  readonly auditPath: string;
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
  const watcher = watchPolicy(options.policyFile, {
    onReload: (p) => {
      log.info('policy reloaded', { file: p.file, rules: p.rules.length });
      for (const warning of p.warnings) log.warn(warning, { file: p.file });
      // SPEC §6: a reload applies `servers` changes (started, stopped, restarted; each logged by the pool).
      void pool?.reconfigure(p.servers).catch((error: unknown) => log.error('applying the reloaded servers failed', { error: (error as Error).message }));
    },
    onError: (e) => log.error('policy change rejected; the running policy stays in force', { error: e.message }),
  });
  const policy = watcher.current;
  const initial = policy();
  for (const warning of initial.warnings) log.warn(warning, { file: initial.file });
  if (initial.store !== undefined) {
    watcher.close();
    throw new CapframeError('invalid_policy', `${initial.file}: store "${initial.store}" is not supported by this version; remove it to use the embedded file store`);
  }

  const store = openFileStore(initial.stateDir);
  if (store.ensureIssuerKey()) log.info('created issuer key', { path: store.paths.issuerKey });
  // A proxy that could not record a revocation (or a minted token) must not serve.
  checkWritable(initial.stateDir, store.paths.revocations);
  const revoked = store.revokedIds();
  // Holder-proof nonces: one store for the whole runtime, in memory in embedded mode. A
  // fleet replaces it with a shared one (same NonceStore interface) so a proof is
  // accepted once across every instance.
  const nonceStore = options.nonceStore ?? createMemoryNonceStore();
  // The verifier accepts any chain depth the format allows; the enforcer applies the
  // policy's max_delegation_depth per call, so a reload changes it at once.
  const verifier = createVerifier({ keys: store.trustedKeys(), revoked, nonceStore, maxDepth: MAX_DEPTH_LIMIT });
  const auditPath = options.auditLog ?? initial.audit.path ?? join(initial.stateDir, 'audit.log');
  mkdirSync(dirname(auditPath), { recursive: true, mode: 0o700 });
  const unlockAudit = lockAuditLog(auditPath);
  let audit: Awaited<ReturnType<typeof openAuditLog>>;
  try {
    // A log torn by a crash is kept as evidence and a new chain started: a proxy that
    // cannot start after kill -9 would be an outage (other damage is still refused).
    audit = await openAuditLog(auditPath, { logArgs: initial.audit.logArgs, syncIntervalMs: initial.audit.syncMs, recoverTornTail: true });
  } catch (error) {
    unlockAudit();
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
  const limiter = new RateLimiter();
  const sweep = setInterval(() => limiter.sweep(3600), 60_000);
  sweep.unref();

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
    screen: () => policy().screen,
  });
  metrics.registry.onCollect(() => {
    for (const [server, count] of Object.entries(upstreams.withheldCounts())) metrics.toolsWithheld.labels(server).set(count);
  });
  pool = upstreams;
  log.info('connecting upstreams', { servers: Object.keys(policy().servers) });
  await upstreams.start();

  const enforcer = new Enforcer({ policy, verifier, issuer: store.issuerKey(), store, upstreams, audit, metrics, limiter, log });
  let revokedCount = revoked.length;
  metrics.revokedTokens.set(revokedCount);
  const revocations = watchRevocations(
    store.paths.revocations,
    (cti) => {
      if (verifier.revoke(cti)) metrics.revokedTokens.set(++revokedCount);
    },
    { log },
  );

  const pending = new Set<Promise<unknown>>();
  const status = backendStatus();
  log.info('capframe runtime started', { policy: initial.file, backend: status.name, backend_reason: status.reason, state_dir: initial.stateDir });

  return {
    policy,
    enforcer,
    upstreams,
    metrics,
    log,
    backend: status.name,
    health: [upstreamHealth(upstreams, upstreamSince)],
    revoke(cti) {
      const added = store.revoke(cti);
      verifier.revoke(cti);
      return added;
    },
    isRevoked: (cti) => verifier.isRevoked(cti),
    store,
    auditPath,
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
      revocations.close();
      clearInterval(sweep);
      await audit.close();
      unlockAudit();
      await upstreams.close();
      log.info('capframe runtime stopped');
    },
  };
}
