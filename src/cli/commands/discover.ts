import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import type { Command } from 'commander';

import type { DiscoverProgress } from '../../discover/index.js';
import { LOCK_FILE_NAME } from '../../discover/lock.js';
import { CapframeError } from '../../errors.js';
import { EXIT_OK, err } from '../exit.js';
import type { SetExit } from './index.js';

interface DiscoverFlags {
  policy: string;
  json?: boolean;
  out?: string;
  lock?: boolean;
  timeout?: string;
}

/** `capframe discover`: list and classify every tool of the policy's servers. */
export function registerDiscover(program: Command, setExit: SetExit): void {
  program
    .command('discover')
    .description("connect to the policy's servers, list every tool and classify its risk")
    .requiredOption('--policy <file>', 'policy file whose `servers` to discover')
    .option('--json', 'print the findings as JSON (docs/discovery.schema.json)')
    .option('--out <file>', 'also write the JSON document to a file')
    .option('--lock', `pin every tool definition in ${LOCK_FILE_NAME} next to the policy file`)
    .option('--timeout <seconds>', "per-server deadline (default: each server's timeout, else 10)")
    .action(async (flags: DiscoverFlags) => {
      const timeoutMs = parseTimeout(flags.timeout);
      // Loaded here, not at start-up: it brings the MCP SDK, which other commands never need.
      const { discoverPolicy, formatTable, lockEntries, mergeLockEntries, readLock, toDocument, visible, writeLock } = await import('../../discover/index.js');
      const progress = process.stderr.isTTY ? (event: DiscoverProgress) => showProgress(event, visible) : undefined;
      const { policy, result } = await discoverPolicy(flags.policy, {
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(progress ? { onProgress: progress } : {}),
      });
      if (Object.keys(policy.servers).length === 0) {
        throw new CapframeError('invalid_argument', `${flags.policy} has no servers under capframe.servers; nothing to discover`);
      }

      const doc = toDocument(result, { policy: policy.file });
      const json = `${JSON.stringify(doc, null, 2)}\n`;
      if (flags.out !== undefined) {
        try {
          await writeFile(flags.out, json);
        } catch (error) {
          throw new CapframeError('invalid_argument', `cannot write --out ${flags.out}: ${(error as Error).message}`);
        }
      }
      process.stdout.write(flags.json === true ? json : formatTable(result));

      if (flags.lock === true) {
        const file = join(dirname(policy.file), LOCK_FILE_NAME);
        const answered = new Set(result.servers.filter((s) => s.status === 'ok').map((s) => s.name));
        const fresh = Object.assign({}, ...[...answered].map((server) => lockEntries(server, result.tools.filter((t) => t.server === server).map((t) => t.definition)))) as ReturnType<typeof lockEntries>;
        const entries = mergeLockEntries(await readLock(file), fresh, answered);
        await writeLock(file, entries);
        const kept = result.servers.filter((s) => s.status !== 'ok').map((s) => s.name);
        err(`wrote ${file} (${Object.keys(entries).length} tools${kept.length > 0 ? `; kept previous entries of unreachable ${kept.join(', ')}` : ''})`);
      }
      if (result.servers.every((s) => s.status !== 'ok')) {
        throw new CapframeError('upstream_unavailable', `no server answered (${result.servers.map((s) => `${s.name}: ${visible(s.error ?? 'unreachable')}`).join('; ')})`);
      }
      setExit(EXIT_OK);
    });
}

function parseTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new CapframeError('invalid_argument', `--timeout must be a number of seconds between 0 and 3600, got ${JSON.stringify(raw)}`);
  }
  return Math.round(seconds * 1000);
}

function showProgress(event: DiscoverProgress, visible: (text: string) => string): void {
  const name = visible(event.server);
  switch (event.phase) {
    case 'connecting':
      err(`… ${name}: connecting`);
      break;
    case 'listing':
      err(`… ${name}: listing tools`);
      break;
    case 'done':
      err(`✓ ${name}: ${event.toolCount ?? 0} tool${event.toolCount === 1 ? '' : 's'}`);
      break;
    case 'failed':
      err(`✗ ${name}: ${visible(event.error ?? 'unreachable')}`);
      break;
  }
}
