/** What every route family of the HTTP server gets to build its routes. */
import type { ConsoleAssets } from '../console/assets.js';
import type { Runtime } from '../proxy/runtime.js';
import type { SessionLimits } from '../proxy/sessions.js';
import type { Route } from './router.js';

export interface HttpOptions {
  /** Largest accepted request body in bytes (default 1 MiB); larger gets 413. */
  maxBodyBytes: number;
  /** Answer MCP POSTs with plain JSON instead of an SSE stream. */
  jsonResponse: boolean;
  /** Bounds on MCP sessions. */
  sessions: SessionLimits;
  /** Browser origins accepted beyond loopback ones (`--allowed-origin`), normalized. */
  allowedOrigins: readonly string[];
  /** Host header values accepted beyond loopback names (`--allowed-host`), normalized. */
  allowedHosts: readonly string[];
  /** The operator console under /console (`--console`) with its files, loaded before the runtime starts; absent: not served. */
  console?: { secureCookie: boolean; assets: ConsoleAssets };
}

export interface HttpContext {
  rt: Runtime;
  options: HttpOptions;
  /** Runs `cleanup` when the HTTP server closes (timers a family started). */
  onClose(cleanup: () => void): void;
}

/** A route family: one file under `routes/`, registered in server.ts with one line. */
export type RouteFamily = (ctx: HttpContext) => Route[];
