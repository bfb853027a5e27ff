#!/usr/bin/env node
// Example MCP server: file access confined to one sandbox directory.
//   read_file  {path}
//   write_file {path, content}
// The sandbox is $SANDBOX_DIR, or a fresh temporary directory. Paths are relative
// to it (absolute paths must already be inside it); anything resolving outside,
// including through a symlink, is refused.
// Run: node examples/servers/filesystem.js            (stdio)
//      node examples/servers/filesystem.js --http 9003 (Streamable HTTP at /mcp)
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';

import { runServer, text } from './lib/harness.js';

let root;
if (process.env.SANDBOX_DIR) {
  mkdirSync(process.env.SANDBOX_DIR, { recursive: true });
  root = realpathSync(process.env.SANDBOX_DIR);
} else {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'capframe-fs-')));
  // A sandbox we made is ours to clean up.
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
}

function inside(candidate) {
  const rel = relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Resolves `path` in the sandbox; checks the real path of its deepest existing ancestor too. */
function confine(path) {
  if (path.includes('\0')) throw new Error('path contains a NUL byte');
  const target = resolve(root, path);
  if (!inside(target)) throw new Error(`${path} is outside the sandbox`);
  let existing = target;
  for (;;) {
    try {
      if (!inside(realpathSync(existing))) throw new Error(`${path} escapes the sandbox through a symlink`);
      break;
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
      existing = dirname(existing);
    }
  }
  return target;
}

await runServer({
  name: 'filesystem',
  defineTools(register) {
    register(
      'read_file',
      {
        title: 'Read a file',
        description: 'Read a UTF-8 text file from the sandbox directory.',
        inputSchema: { path: z.string().describe('File path, relative to the sandbox') },
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      async ({ path }) => {
        try {
          return text(readFileSync(confine(path), 'utf8'));
        } catch (error) {
          return text(`read_file: ${error.message}`, true);
        }
      },
    );
    register(
      'write_file',
      {
        title: 'Write a file',
        description: 'Create or overwrite a UTF-8 text file in the sandbox directory.',
        inputSchema: {
          path: z.string().describe('File path, relative to the sandbox'),
          content: z.string().max(1_000_000).describe('The new file content'),
        },
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      },
      async ({ path, content }) => {
        try {
          const target = confine(path);
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, content);
          return text(`wrote ${Buffer.byteLength(content)} bytes to ${relative(root, target)}`);
        } catch (error) {
          return text(`write_file: ${error.message}`, true);
        }
      },
    );
  },
});
