/**
 * How a batch of OCSF events reaches a receiver: RFC 5424 syslog over TCP or TLS with
 * RFC 6587 octet-counting framing, or an HTTP(S) POST of a JSON array. `send` resolves
 * once the batch is delivered, as far as the protocol can tell, and rejects otherwise.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';

import type { AuditSinkConfig } from '../../policy/types.js';
import type { OcsfApiActivity } from '../ocsf.js';
import type { AuditRecord } from '../record.js';

/** One line on its way: the record, its OCSF event. */
export interface SinkItem {
  record: AuditRecord;
  event: OcsfApiActivity;
}

export interface SinkTransport {
  send(items: readonly SinkItem[]): Promise<void>;
  close(): void;
}

const SEND_TIMEOUT_MS = 10_000;
/**
 * TCP has no acknowledgement a syslog sender can read: a batch counts as delivered when
 * the socket took it and stayed open this long after. A receiver that went away sooner
 * gets the batch again on the next connection (at least once; `metadata.uid` dedupes).
 */
const SYSLOG_SETTLE_MS = 100;

/** JSON with every non-ASCII character escaped: a syslog MSG that is plain ASCII needs no BOM. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** PRINTUSASCII only, at most `max` characters, `-` when empty (RFC 5424 §6). */
function headerField(text: string, max: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

const HOSTNAME = headerField(hostname(), 255);
/** Facility 13, "log audit" (RFC 5424 §6.2.1). */
const FACILITY = 13;

/**
 * One RFC 5424 message, octet-counted (RFC 6587 §3.4.1): `<len> <PRI>1 TIMESTAMP HOST
 * capframe PID MSGID - MSG`, where MSG is the OCSF event as ASCII JSON.
 *
 * @example
 * syslogFrame(item); // '412 <110>1 2026-11-21T15:34:48.123Z host capframe 4242 allow - {"activity_id":99,…}'
 */
export function syslogFrame(item: SinkItem): string {
  const { record } = item;
  // Severity: informational (6) for allowed calls, warning (4) for denials and failed calls.
  const severity = record.decision === 'allow' ? 6 : 4;
  const message = `<${FACILITY * 8 + severity}>1 ${record.time} ${HOSTNAME} capframe ${process.pid} ${record.decision} - ${asciiJson(item.event)}`;
  return `${Buffer.byteLength(message)} ${message}`;
}

class SyslogTransport implements SinkTransport {
  private socket: Socket | undefined;
  private readonly url: URL;
  private readonly ca: Buffer | undefined;

  constructor(config: AuditSinkConfig) {
    this.url = new URL(config.url);
    this.ca = config.ca === undefined ? undefined : readFileSync(config.ca);
  }

  private connect(): Promise<Socket> {
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.url.port);
    return new Promise((resolve, reject) => {
      const tls = this.url.protocol === 'tls:';
      const socket = tls
        ? tlsConnect({ host, port, ...(this.ca !== undefined && { ca: this.ca }), ...(isIP(host) === 0 && { servername: host }) })
        : netConnect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error(`connecting to ${this.url.host} timed out`)), SEND_TIMEOUT_MS);
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        socket.on('error', () => undefined); // reported through 'close'
        socket.once('close', () => {
          if (this.socket === socket) this.socket = undefined;
        });
        // The receiver sends nothing; anything it does send is ignored.
        socket.resume();
        resolve(socket);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  async send(items: readonly SinkItem[]): Promise<void> {
    const socket = this.socket ?? (this.socket = await this.connect());
    const payload = items.map(syslogFrame).join('');
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      };
      const onClose = () => fail(new Error(`connection to ${this.url.host} closed before the batch settled`));
      socket.once('close', onClose);
      const timer = setTimeout(() => {
        socket.destroy();
        fail(new Error(`writing to ${this.url.host} timed out`));
      }, SEND_TIMEOUT_MS);
      socket.write(payload, (error) => {
        if (error) return fail(error);
        setTimeout(() => {
          socket.removeListener('close', onClose);
          if (settled) return;
          if (socket.destroyed) return fail(new Error(`connection to ${this.url.host} closed`));
          settled = true;
          clearTimeout(timer);
          resolve();
        }, SYSLOG_SETTLE_MS);
      });
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}

class HttpTransport implements SinkTransport {
  private readonly url: URL;
  private readonly options: RequestOptions;

  constructor(config: Extract<AuditSinkConfig, { type: 'http' }>) {
    this.url = new URL(config.url);
    const ca = config.ca === undefined ? undefined : readFileSync(config.ca);
    this.options = { method: 'POST', headers: { ...config.headers, 'content-type': 'application/json' }, ...(ca !== undefined && { ca }) };
  }

  send(items: readonly SinkItem[]): Promise<void> {
    const body = JSON.stringify(items.map((item) => item.event));
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.url, { ...this.options, headers: { ...this.options.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.once('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`${this.url.host} answered HTTP ${status}`));
        });
        res.once('error', reject);
      });
      req.setTimeout(SEND_TIMEOUT_MS, () => req.destroy(new Error(`${this.url.host} did not answer in time`)));
      req.once('error', reject);
      req.end(body);
    });
  }

  close(): void {
    // Nothing held between batches.
  }
}

/** The transport for a configured sink. */
export function createTransport(config: AuditSinkConfig): SinkTransport {
  return config.type === 'syslog' ? new SyslogTransport(config) : new HttpTransport(config);
}

/** The sink's name in logs and metrics: its kind and host, never its path or headers (they may carry credentials). */
export function sinkName(config: AuditSinkConfig): string {
  const url = new URL(config.url);
  return `${config.type} ${url.protocol}//${url.host}`;
}
