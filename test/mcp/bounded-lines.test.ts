/** src/mcp/bounded-lines.ts: capped line splitting and the streaming id scanner. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { BoundedLineReader, IdScanner, type LineEvent } from '../../src/mcp/bounded-lines.js';

function read(max: number, chunks: (string | Buffer)[]): LineEvent[] {
  const events: LineEvent[] = [];
  const reader = new BoundedLineReader(max, (e) => events.push(e));
  for (const c of chunks) reader.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'utf8'));
  return events;
}

/** Feeds `text` to a scanner in pieces of `step` bytes. */
function scan(text: string, step = 7): string | number | undefined {
  const bytes = Buffer.from(text, 'utf8');
  const scanner = new IdScanner();
  for (let i = 0; i < bytes.length; i += step) scanner.feed(bytes.subarray(i, i + step));
  return scanner.id();
}

describe('BoundedLineReader', () => {
  it('splits lines across chunks, drops "\\r" and blank lines, keeps multi-byte characters whole', () => {
    const text = '{"a":"é😀"}\r\n\n  \n{"b":2}\n{"c"';
    const bytes = Buffer.from(text, 'utf8');
    // One byte at a time: every split point, including inside a multi-byte character.
    const events = read(100, [...bytes].map((b) => Buffer.from([b])));
    expect(events).toEqual([
      { kind: 'line', text: '{"a":"é😀"}' },
      { kind: 'line', text: '{"b":2}' },
    ]);
  });

  it('skips a line over the cap without holding it, reports its id, and goes on with the next line', () => {
    const big = `{"result":{"content":[{"type":"text","text":"${'x'.repeat(5000)}"}]},"jsonrpc":"2.0","id":42}`;
    const events = read(1000, [`{"jsonrpc":"2.0","id":1,"result":{}}\n${big.slice(0, 700)}`, big.slice(700, 3000), `${big.slice(3000)}\n{"ok":true}\n`]);
    expect(events).toEqual([
      { kind: 'line', text: '{"jsonrpc":"2.0","id":1,"result":{}}' },
      { kind: 'oversize', bytes: big.length, id: 42 },
      { kind: 'line', text: '{"ok":true}' },
    ]);
  });

  it('a line of exactly the cap is delivered; one byte more is not', () => {
    const line = `{"id":1,"p":"${'y'.repeat(100)}"}`;
    expect(read(line.length, [`${line}\n`])).toEqual([{ kind: 'line', text: line }]);
    expect(read(line.length - 1, [`${line}\n`])).toEqual([{ kind: 'oversize', bytes: line.length, id: 1 }]);
  });
});

describe('IdScanner', () => {
  it('finds the top-level id wherever it is, and only that one', () => {
    expect(scan('{"id":7,"result":{}}')).toBe(7);
    expect(scan('{"result":{"id":99,"content":[{"id":98}]},"jsonrpc":"2.0","id":"abc"}')).toBe('abc');
    expect(scan('{ "jsonrpc" : "2.0" , "id" : 12 , "result" : { } }')).toBe(12);
    expect(scan('{"i\\u0064":5,"result":{}}')).toBe(5); // an escaped key is still "id"
    expect(scan('{"text":"\\"id\\":3,","id":4}')).toBe(4); // "id" inside a string is text
    expect(scan('{"id":1,"x":{},"id":2}')).toBe(2); // the last duplicate wins, as in JSON.parse
    expect(scan('{"idx":1,"result":{}}')).toBeUndefined();
    expect(scan('{"id":{"a":1},"result":{}}')).toBeUndefined(); // not a usable id
    expect(scan('{"id":null}')).toBeUndefined();
    expect(scan('[{"id":1}]')).toBeUndefined(); // a batch has no top-level id
    expect(scan(`{"id":"${'z'.repeat(300)}"}`)).toBeUndefined(); // no real id is that long
  });

  it('agrees with JSON.parse on the id of any JSON-RPC answer, fed in any chunk size', () => {
    const id = fc.oneof(fc.integer(), fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(id, fc.jsonValue(), fc.boolean(), fc.integer({ min: 1, max: 50 }), (value, result, idFirst, step) => {
        const message = idFirst ? { jsonrpc: '2.0', id: value, result: { data: result } } : { result: { data: result }, jsonrpc: '2.0', id: value };
        expect(scan(JSON.stringify(message), step)).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });
});
