import { describe, expect, it } from 'vitest';

import { constraintPath, displayPath, walkSchema } from '../../src/discover/schema-walk.js';

const paths = (schema: unknown): string[] => walkSchema(schema).nodes.map((n) => displayPath(n));

describe('walkSchema', () => {
  it('visits nested properties, array items, tuples and map values', () => {
    const schema = {
      type: 'object',
      properties: {
        order: { type: 'object', properties: { total: { type: 'number' } }, required: ['total'] },
        urls: { type: 'array', items: { type: 'string', format: 'uri' } },
        pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }] },
        tags: { type: 'object', additionalProperties: { type: 'string' } },
      },
      required: ['order'],
    };
    expect(paths(schema)).toEqual(['(arguments)', 'order', 'order.total', 'urls', 'urls[]', 'pair', 'pair[]', 'pair[]', 'tags', 'tags.*']);
    const total = walkSchema(schema).nodes.find((n) => displayPath(n) === 'order.total');
    expect(total?.required).toBe(true);
    expect(constraintPath(total!)).toBe('order.total');
    const url = walkSchema(schema).nodes.find((n) => displayPath(n) === 'urls[]');
    expect(url?.keywords.format).toBe('uri');
    expect(constraintPath(url!)).toBeUndefined();
  });

  it('expands anyOf/oneOf into alternatives at the same path and merges allOf', () => {
    const schema = {
      type: 'object',
      properties: {
        amount: { anyOf: [{ type: 'number', maximum: 10 }, { type: 'number' }] },
        price: { allOf: [{ type: 'number' }, { maximum: 99 }] },
        target: { oneOf: [{ type: 'string', pattern: '^https://' }, { type: 'null' }] },
      },
    };
    const nodes = walkSchema(schema).nodes;
    const amounts = nodes.filter((n) => n.name === 'amount');
    expect(amounts.map((n) => n.keywords.maximum)).toEqual([10, undefined]);
    const price = nodes.filter((n) => n.name === 'price');
    expect(price).toHaveLength(1);
    expect(price[0]?.keywords.maximum).toBe(99);
    expect([...(price[0]?.types ?? [])]).toEqual(['number']);
    expect(nodes.filter((n) => n.name === 'target').map((n) => [...n.types])).toEqual([['string'], ['null']]);
  });

  it('follows local $refs (#/$defs and #/definitions) and stops at cycles', () => {
    const schema = {
      type: 'object',
      properties: { payment: { $ref: '#/$defs/money' }, tree: { $ref: '#/definitions/node' } },
      $defs: { money: { type: 'object', properties: { amount: { type: 'number' } } } },
      definitions: {
        node: { type: 'object', properties: { value: { type: 'string' }, children: { type: 'array', items: { $ref: '#/definitions/node' } } } },
      },
    };
    const result = walkSchema(schema);
    expect(result.nodes.map((n) => displayPath(n))).toEqual([
      '(arguments)',
      'payment',
      'payment.amount',
      'tree',
      'tree.value',
      'tree.children',
      'tree.children[]',
    ]);
    expect(result.truncated).toBe(false);
  });

  it('survives hostile schemas: self-reference, remote refs, huge fan-out', () => {
    expect(() => walkSchema({ $ref: '#' })).not.toThrow();
    expect(walkSchema({ $ref: 'https://evil.example/schema.json' }).nodes).toHaveLength(1);
    const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 6000 }, (_, i) => [`p${i}`, { type: 'string' }])) };
    const result = walkSchema(wide);
    expect(result.truncated).toBe(true);
    expect(result.nodes.length).toBeLessThanOrEqual(5000);
    const product = { allOf: Array.from({ length: 12 }, () => ({ anyOf: [{ type: 'string' }, { type: 'number' }] })) };
    expect(walkSchema(product).truncated).toBe(true);
  });

  it('collects every description, title and string enum for the text rules', () => {
    const { texts } = walkSchema({
      type: 'object',
      description: 'root',
      properties: { mode: { type: 'string', enum: ['a', 'b'], description: 'the mode' } },
    });
    expect(texts.map((t) => t.text)).toEqual(['root', 'the mode', 'a', 'b']);
    expect(texts[1]?.where).toBe('properties.mode.description');
  });
});

describe('walkSchema and the rules on arbitrary input', () => {
  it('never throw, whatever JSON a server sends as a schema or a description', async () => {
    const fc = await import('fast-check');
    const { classifyTool } = await import('../../src/discover/rules.js');
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.string({ unit: 'binary' }), (schema, description) => {
        walkSchema(schema);
        classifyTool('srv', { name: 'x', description, inputSchema: schema } as never);
      }),
      { numRuns: 300 },
    );
  });
});
