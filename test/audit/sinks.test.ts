/**
 * Audit sinks (issue 14, acceptance 4): a real `serve` streams every audit line as OCSF to
 * a local syslog receiver (RFC 5424, octet-counted over TCP, and over TLS with a CA file)
 * and a local HTTP receiver; lines written while a receiver is down arrive after it comes
 * back, and after a restart of `serve` the sink resumes from its cursor.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';

import { afterAll, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.js';
import { killAllServed, startServe, type Served } from '../proxy/faults-helpers.js';

const PEP = 'cfk_sink-test-pep';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const dirs: string[] = [];
afterAll(() => {
  killAllServed();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** An OCSF event as received, with the fields the tests look at. */
interface Received {
  class_uid: number;
  activity_id: number;
  type_uid: number;
  status_code: string;
  disposition?: string;
  metadata: { sequence: number; uid: string; version: string };
  actor: { user?: { name: string } };
  resources: { name: string }[];
  unmapped: { via?: string };
}

/** A syslog receiver: parses octet-counted RFC 5424 frames; `stop` closes the listener and every connection. */
function syslogReceiver(port = 0, tls?: { key: string; cert: string }) {
  const messages: { header: string; event: Received }[] = [];
  const sockets = new Set<Socket>();
  const onSocket = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const space = buf.indexOf(0x20);
        if (space < 0) return;
        const len = Number(buf.subarray(0, space).toString());
        expect(Number.isSafeInteger(len), `bad frame length in ${buf.subarray(0, 20).toString()}`).toBe(true);
        if (buf.length < space + 1 + len) return;
        const msg = buf.subarray(space + 1, space + 1 + len).toString('utf8');
        buf = buf.subarray(space + 1 + len);
        const m = /^(<\d{1,3}>1 \S+ \S+ capframe \d+ (?:allow|deny|outcome) -) (\{.*\})$/.exec(msg);
        expect(m, `not an RFC 5424 capframe message: ${msg.slice(0, 120)}`).not.toBeNull();
        messages.push({ header: m![1]!, event: JSON.parse(m![2]!) as Received });
      }
    });
  };
  const server: TcpServer = tls ? createTlsServer(tls, onSocket) : createTcpServer(onSocket);
  return {
    messages,
    listen: () => new Promise<number>((resolve) => server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port))),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP receiver: every POSTed JSON array of events; `stop` closes it and its connections. */
function httpReceiver(port = 0) {
  const events: Received[] = [];
  const headers: string[] = [];
  const server: HttpServer = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      headers.push(String(req.headers.authorization));
      events.push(...(JSON.parse(body) as Received[]));
      res.writeHead(204).end();
    });
  });
  return {
    events,
    headers,
    listen: () => new Promise<number>((resolve) => server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port))),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function writePolicy(dir: string, sinks: string): string {
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `capframe:
  version: "0.2"
  agents:
    gateway: { key_sha256: "${sha(PEP)}", pdp: true }
    bot: { key_sha256: "${sha('cfk_bot')}" }
  audit:
    sinks:
${sinks}
  rules:
    - { tool: remote.read, agents: [bot], ttl: 60 }
`,
  );
  return policy;
}

/** One audited decision per call, through the AuthZEN API (no upstream needed). */
async function decisions(served: Served, n: number, allowed = true): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${served.base}/access/v1/evaluation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PEP}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: { type: 'agent', id: 'bot' }, action: { name: 'tools/call' }, resource: { type: 'mcp_tool', id: allowed ? 'remote.read' : 'remote.write' } }),
    });
    expect(res.status).toBe(200);
  }
}

function auditSeqs(dir: string): number[] {
  return readFileSync(join(dir, '.capframe', 'audit.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
}

const seqsOf = (events: Received[]) => [...new Set(events.map((e) => e.metadata.sequence))].sort((a, b) => a - b);

describe('audit sinks', () => {
  it('every line reaches a syslog (TCP) and an HTTP receiver as OCSF, including lines written while each was down, and after a restart of serve', async () => {
    const dir = tempDir('capframe-sinks-');
    dirs.push(dir);
    const syslog = syslogReceiver();
    const syslogPort = await syslog.listen();
    const http = httpReceiver();
    const httpPort = await http.listen();
    const policy = writePolicy(
      dir,
      `      - { type: syslog, url: "tcp://127.0.0.1:${syslogPort}" }
      - { type: http, url: "http://127.0.0.1:${httpPort}/ingest", headers: { Authorization: "Bearer siem-token" } }`,
    );
    let served = await startServe(policy);
    await decisions(served, 3);
    await decisions(served, 1, false);
    await expect.poll(() => seqsOf(syslog.messages.map((m) => m.event)), { timeout: 15_000 }).toEqual([1, 2, 3, 4]);
    await expect.poll(() => seqsOf(http.events), { timeout: 15_000 }).toEqual([1, 2, 3, 4]);

    // The OCSF shape, from both receivers.
    const denied = http.events.find((e) => e.metadata.sequence === 4)!;
    expect(denied).toMatchObject({ class_uid: 6003, activity_id: 99, type_uid: 600399, status_code: 'no_rule', disposition: 'Blocked', actor: { user: { name: 'bot' } }, resources: [{ name: 'remote.write' }], unmapped: { via: 'authzen' }, metadata: { version: '1.6.0' } });
    const line4 = readFileSync(join(dir, '.capframe', 'audit.log'), 'utf8').split('\n')[3]!;
    expect(denied.metadata.uid).toBe(createHash('sha256').update(line4).digest('hex'));
    expect(syslog.messages.find((m) => m.event.metadata.sequence === 4)!.header).toMatch(/^<108>1 /); // facility 13, warning
    expect(syslog.messages.find((m) => m.event.metadata.sequence === 1)!.header).toMatch(/^<110>1 /); // informational
    expect(http.headers.every((h) => h === 'Bearer siem-token')).toBe(true);

    // Both receivers go down; calls go on (never blocked by a sink) and are written to the log.
    await syslog.stop();
    await http.stop();
    await decisions(served, 5);
    // The answers are back; their audit lines reach the file just after: wait for them.
    await expect.poll(() => auditSeqs(dir).length, { timeout: 10_000 }).toBe(9);
    // Back on the same ports: the lines written meanwhile arrive.
    const syslog2 = syslogReceiver(syslogPort);
    await syslog2.listen();
    const http2 = httpReceiver(httpPort);
    await http2.listen();
    await expect.poll(() => seqsOf([...syslog.messages, ...syslog2.messages].map((m) => m.event)), { timeout: 40_000, interval: 200 }).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await expect.poll(() => seqsOf([...http.events, ...http2.events]), { timeout: 40_000, interval: 200 }).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // serve stops; lines written by the next serve (and none delivered twice after a clean stop) follow.
    expect((await served.stop()).code).toBe(0);
    const httpSeen = http2.events.length;
    await http2.stop();
    served = await startServe(policy);
    await decisions(served, 2);
    const http3 = httpReceiver(httpPort);
    await http3.listen();
    await expect.poll(() => seqsOf(http3.events), { timeout: 40_000, interval: 200 }).toEqual([10, 11]);
    await expect.poll(() => seqsOf([...syslog.messages, ...syslog2.messages].map((m) => m.event)).at(-1), { timeout: 20_000 }).toBe(11);
    expect(http2.events).toHaveLength(httpSeen);
    expect((await served.stop()).code).toBe(0);
    await Promise.all([syslog2.stop(), http3.stop()]);
  }, 120_000);

  it('syslog over TLS verifies the receiver against the configured CA', async () => {
    const dir = tempDir('capframe-sinks-tls-');
    dirs.push(dir);
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const syslog = syslogReceiver(0, { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') });
    const port = await syslog.listen();
    const policy = writePolicy(dir, `      - { type: syslog, url: "tls://127.0.0.1:${port}", ca: cert.pem }`);
    const served = await startServe(policy);
    await decisions(served, 2);
    await expect.poll(() => seqsOf(syslog.messages.map((m) => m.event)), { timeout: 15_000 }).toEqual([1, 2]);
    expect((await served.stop()).code).toBe(0);
    await syslog.stop();

    // Without the CA the receiver is not trusted: nothing is sent, the failure is counted and logged.
    const other = tempDir('capframe-sinks-tls-untrusted-');
    dirs.push(other);
    const syslog2 = syslogReceiver(0, { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') });
    const port2 = await syslog2.listen();
    const untrusted = await startServe(writePolicy(other, `      - { type: syslog, url: "tls://127.0.0.1:${port2}" }`));
    await decisions(untrusted, 1);
    await untrusted.waitForLog((l) => l.msg === 'audit sink cannot deliver; retrying (the lines wait in the audit log)', 'the sink to report the failure', 15_000);
    expect(syslog2.messages).toHaveLength(0);
    await untrusted.stop();
    await syslog2.stop();
  }, 60_000);
});
