/**
 * `logging/setLevel` per session: the level is the session's own, and filters the log
 * messages relayed to it (src/proxy/mcp/relay.ts); one session's level never changes what
 * another receives. Upstreams are asked for the most verbose level any session set, so
 * each session can be served; a session that never sets a level receives no log messages.
 */
import { SetLevelRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import type { ProxySession } from './session.js';

export function registerLogging(session: ProxySession): void {
  session.server.setRequestHandler(SetLevelRequestSchema, (request) => {
    session.logLevel = request.params.level;
    session.deps.hub.levelsChanged();
    return {};
  });
}
