/**
 * Newline-delimited JSON-RPC messages from a byte stream, with a cap on each message.
 * A message over the cap is not buffered: its bytes are skipped up to the next newline
 * while a small scanner picks out its top-level `"id"`, so the one request it answered
 * can be failed and everything else on the stream carries on.
 */

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Ids longer than this (as JSON text) are not captured; no real request id is that long. */
const MAX_ID_BYTES = 256;
/** Keys longer than this cannot be "id", however escaped. */
const MAX_KEY_BYTES = 32;

/** What the reader hands on: a complete line, or the fact that one was too long. */
export type LineEvent =
  | { kind: 'line'; text: string }
  | { kind: 'oversize'; bytes: number; id: string | number | undefined };

/**
 * Splits a stream into lines of at most `maxBytes` bytes (the "\n" and a trailing "\r"
 * not counted); blank lines are dropped. Memory is bounded by `maxBytes` plus one chunk.
 *
 * @example
 * const reader = new BoundedLineReader(8 * 1024 * 1024, (event) => console.log(event));
 * child.stdout.on('data', (chunk: Buffer) => reader.push(chunk));
 */
export class BoundedLineReader {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Set while skipping an oversized line. */
  private scanner: IdScanner | undefined;
  private skipped = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly emit: (event: LineEvent) => void,
  ) {}

  push(chunk: Buffer): void {
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, from);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(from, end);
      if (this.scanner !== undefined) {
        this.scanner.feed(piece);
        this.skipped += piece.length;
      } else if (this.bytes + piece.length > this.maxBytes) {
        // Over the cap: stop buffering. The id may already have gone by (or come last, as
        // the SDK writes it), so scan the line from its start.
        const scanner = new IdScanner();
        for (const held of this.chunks) scanner.feed(held);
        scanner.feed(piece);
        this.scanner = scanner;
        this.skipped = this.bytes + piece.length;
        this.chunks = [];
        this.bytes = 0;
      } else if (piece.length > 0) {
        // Copy: a view would pin the whole chunk until the line ends.
        this.chunks.push(nl < 0 ? Buffer.from(piece) : piece);
        this.bytes += piece.length;
      }
      if (nl < 0) return;
      from = nl + 1;
      this.endLine();
    }
  }

  /** Forgets a partial line (the stream ended or restarted). */
  reset(): void {
    this.chunks = [];
    this.bytes = 0;
    this.scanner = undefined;
    this.skipped = 0;
  }

  private endLine(): void {
    const scanner = this.scanner;
    if (scanner !== undefined) {
      this.scanner = undefined;
      this.emit({ kind: 'oversize', bytes: this.skipped, id: scanner.id() });
      this.skipped = 0;
      return;
    }
    const chunks = this.chunks;
    const bytes = this.bytes;
    this.chunks = [];
    this.bytes = 0;
    if (bytes === 0) return;
    let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)).toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return;
    this.emit({ kind: 'line', text });
  }
}

/**
 * The top-level `"id"` of a JSON object read byte by byte, without holding the object:
 * it tracks strings, escapes and nesting, and captures only the (short) id value.
 * Structural JSON characters are ASCII and never occur inside a UTF-8 multi-byte
 * sequence, so bytes can be scanned directly.
 *
 * @example
 * const s = new IdScanner();
 * s.feed(Buffer.from('{"result":{"content":[]},"jsonrpc":"2.0","id":7}'));
 * s.id(); // 7
 */
export class IdScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** At depth 1, the next string is a key. */
  private keyNext = false;
  private key: number[] | undefined;
  /** The key just read was "id": the value after ":" is captured. */
  private idKey = false;
  private value: number[] | undefined;
  private found: string | number | undefined;

  feed(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (this.inString) {
        this.capture(b);
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) {
          this.inString = false;
          if (this.key !== undefined) this.endKey();
        }
        continue;
      }
      switch (b) {
        case QUOTE:
          this.inString = true;
          if (this.depth === 1 && this.keyNext) {
            this.keyNext = false;
            this.key = [];
          } else this.capture(b);
          break;
        case 0x7b: // {
        case 0x5b: // [
          this.depth += 1;
          // An object or array is no id.
          if (this.depth === 2) this.value = undefined;
          if (this.depth === 1) this.keyNext = b === 0x7b;
          break;
        case 0x7d: // }
        case 0x5d: // ]
          if (this.depth === 1) this.endValue();
          this.depth -= 1;
          break;
        case 0x2c: // ,
          if (this.depth === 1) {
            this.endValue();
            this.keyNext = true;
          } else this.capture(b);
          break;
        case 0x3a: // :
          if (this.depth === 1 && this.idKey) {
            this.idKey = false;
            this.value = [];
          }
          break;
        case 0x20:
        case 0x09:
        case 0x0d:
        case 0x0a:
          break;
        default:
          this.capture(b);
      }
    }
  }

  /** The last top-level "id" seen (a duplicate key wins, as in JSON.parse), if it was a string or number. */
  id(): string | number | undefined {
    return this.found;
  }

  private capture(b: number): void {
    if (this.key !== undefined) {
      // Past MAX_KEY_BYTES (+ the closing quote) the key cannot be "id"; stop growing it.
      if (this.key.length <= MAX_KEY_BYTES + 1) this.key.push(b);
    } else if (this.value !== undefined && this.depth === 1) {
      this.value.push(b);
      if (this.value.length > MAX_ID_BYTES) this.value = undefined;
    }
  }

  private endKey(): void {
    const raw = this.key!;
    this.key = undefined;
    this.idKey = false;
    if (raw.length > MAX_KEY_BYTES + 1) return;
    raw.pop(); // the closing quote, captured with the string
    try {
      // Decodes escapes, so "i\u0064" is "id" as it is to JSON.parse.
      this.idKey = JSON.parse(`"${Buffer.from(raw).toString('utf8')}"`) === 'id';
    } catch {
      this.idKey = false;
    }
  }

  private endValue(): void {
    const raw = this.value;
    this.value = undefined;
    if (raw === undefined || raw.length === 0) return;
    try {
      const parsed: unknown = JSON.parse(Buffer.from(raw).toString('utf8'));
      if (typeof parsed === 'string' || typeof parsed === 'number') this.found = parsed;
    } catch {
      // Not a JSON scalar: no usable id.
    }
  }
}
