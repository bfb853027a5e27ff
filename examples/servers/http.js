#!/usr/bin/env node
// Example MCP server: an HTTP fetcher that never touches the network.
//   fetch {url} — returns a canned description of the request it would make.
// It exists to show discovery flagging an SSRF surface and policy pinning URLs
// with `url_origin_in`, without making a demo depend on the internet.
// Run: node examples/servers/http.js            (stdio)
//      node examples/servers/http.js --http 9004 (Streamable HTTP at /mcp)
import { z } from 'zod';

import { runServer, text } from './lib/harness.js';

await runServer({
  name: 'http',
  defineTools(register) {
    register(
      'fetch',
      {
        title: 'Fetch a URL',
        description: 'Fetch a web page by URL and return its body.',
        inputSchema: { url: z.string().url().describe('Absolute http(s) URL') },
        annotations: { readOnlyHint: true, openWorldHint: true },
      },
      async ({ url }) => {
        let parsed;
        try {
          parsed = new URL(url);
        } catch {
          return text(`fetch: not a valid URL: ${url}`, true);
        }
        // Canned on purpose: no socket is opened.
        return text({
          simulated: true,
          request: { method: 'GET', url: parsed.href, origin: parsed.origin },
          status: 200,
          body: `<html><body>Example content for ${parsed.href}</body></html>`,
        });
      },
    );
  },
});
