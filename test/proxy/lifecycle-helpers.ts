/**
 * Helpers for tests about process lifecycles (test/proxy/operations.test.ts,
 * test/cli/demo.test.ts): a CLI run to its exit in its own process group, a
 * really occupied port, and the upstream children a serve process reported.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';

import { CLI, ROOT } from '../helpers.js';
import { withTimeout, type LogLine } from './faults-helpers.js';

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the upstream children a serve (or demo) process reported in its JSON logs, by server. */
export function connectedPids(stderr: string): Map<string, number> {
  const pids = new Map<string, number>();
  for (const text of stderr.split('\n')) {
    if (!text.startsWith('{')) continue;
    const line = JSON.parse(text) as LogLine;
    if (line.msg === 'upstream connected' && typeof line.pid === 'number') pids.set(line.server as string, line.pid);
  }
  return pids;
}

/** Runs `capframe <args>` in its own process group to its exit; a run that hangs is killed (whole group) and fails. */
export async function runToExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    return { code: await withTimeout(exited, timeoutMs, () => `capframe ${args[0]} to exit; it kept running. stderr:\n${stderr}`), stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
}

/** Holds a real port on 127.0.0.1 until `server.close()`. */
export async function occupyPort(): Promise<{ port: number; server: Server }> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  return { port: (holder.address() as { port: number }).port, server: holder };
}
