#!/usr/bin/env node
// Example MCP server: a tiny in-memory customers/orders database.
//   query  {sql}                — read-only SELECT through a deliberately small parser
//   update {table, id, fields}  — changes one row
// Run: node examples/servers/database.js            (stdio)
//      node examples/servers/database.js --http 9001 (Streamable HTTP at /mcp)
import { z } from 'zod';

import { runServer, text } from './lib/harness.js';

// Module-level so it survives across stateless HTTP requests.
const tables = {
  customers: [
    { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', country: 'GB', tier: 'gold' },
    { id: 2, name: 'Grace Hopper', email: 'grace@example.com', country: 'US', tier: 'silver' },
    { id: 3, name: 'Alan Turing', email: 'alan@example.com', country: 'GB', tier: 'bronze' },
    { id: 4, name: 'Katherine Johnson', email: 'katherine@example.com', country: 'US', tier: 'gold' },
  ],
  orders: [
    { id: 101, customer_id: 1, total: 42.5, currency: 'EUR', status: 'paid' },
    { id: 102, customer_id: 2, total: 19.99, currency: 'USD', status: 'refunded' },
    { id: 103, customer_id: 1, total: 120, currency: 'EUR', status: 'shipped' },
    { id: 104, customer_id: 4, total: 7.25, currency: 'USD', status: 'paid' },
  ],
};

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|('(?:[^']|'')*')|(<=|>=|<>|!=|=|<|>|,|\*|\(|\)|;)|([A-Za-z_][A-Za-z0-9_]*))/y;

function tokenize(sql) {
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < sql.length) {
    if (/^\s*$/.test(sql.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(sql);
    if (!m) throw new Error(`unexpected character at offset ${TOKEN.lastIndex}`);
    if (m[1] !== undefined) tokens.push({ kind: 'num', value: Number(m[1]) });
    else if (m[2] !== undefined) tokens.push({ kind: 'str', value: m[2].slice(1, -1).replaceAll("''", "'") });
    else if (m[3] !== undefined) tokens.push({ kind: 'op', value: m[3] });
    else tokens.push({ kind: 'id', value: m[4], upper: m[4].toUpperCase() });
  }
  return tokens;
}

/** Parses `SELECT cols|*|COUNT(*) FROM t [WHERE c op v [AND ...]] [ORDER BY c [ASC|DESC]] [LIMIT n]`. */
function parseSelect(sql) {
  const t = tokenize(sql);
  let i = 0;
  const peek = () => t[i];
  const keyword = (word) => peek()?.kind === 'id' && peek().upper === word && (i++, true);
  const expect = (word) => {
    if (!keyword(word)) throw new Error(`expected ${word}`);
  };
  const ident = () => {
    const tok = t[i++];
    if (tok?.kind !== 'id') throw new Error('expected a column or table name');
    return tok.value;
  };
  const op = (value) => peek()?.kind === 'op' && peek().value === value && (i++, true);

  if (!keyword('SELECT')) throw new Error('only SELECT statements are allowed (this tool is read-only)');
  let columns = [];
  let count = false;
  if (op('*')) columns = ['*'];
  else if (keyword('COUNT')) {
    if (!op('(') || !op('*') || !op(')')) throw new Error('expected COUNT(*)');
    count = true;
  } else {
    do columns.push(ident());
    while (op(','));
  }
  expect('FROM');
  const table = ident();
  const where = [];
  if (keyword('WHERE')) {
    do {
      const column = ident();
      const operator = t[i++];
      const isLike = operator?.kind === 'id' && operator.upper === 'LIKE';
      if (!isLike && operator?.kind !== 'op') throw new Error('expected a comparison operator');
      const literal = t[i++];
      if (literal?.kind !== 'num' && literal?.kind !== 'str') throw new Error('expected a number or a quoted string');
      where.push({ column, operator: isLike ? 'LIKE' : operator.value, value: literal.value });
    } while (keyword('AND'));
  }
  let order;
  if (keyword('ORDER')) {
    expect('BY');
    order = { column: ident(), desc: false };
    if (keyword('DESC')) order.desc = true;
    else keyword('ASC');
  }
  let limit;
  if (keyword('LIMIT')) {
    const n = t[i++];
    if (n?.kind !== 'num' || !Number.isInteger(n.value)) throw new Error('LIMIT needs an integer');
    limit = n.value;
  }
  op(';');
  if (i !== t.length) throw new Error('unexpected text after the query (one SELECT statement only)');
  return { columns, count, table, where, order, limit };
}

function compare(row, { column, operator, value }) {
  if (!(column in row)) throw new Error(`unknown column ${column}`);
  const cell = row[column];
  switch (operator) {
    case '=': return cell === value;
    case '!=': case '<>': return cell !== value;
    case '<': return cell < value;
    case '<=': return cell <= value;
    case '>': return cell > value;
    case '>=': return cell >= value;
    case 'LIKE': {
      const re = new RegExp(`^${String(value).replace(/[.+?^${}()|[\]\\*]/g, '\\$&').replaceAll('%', '.*').replaceAll('_', '.')}$`, 'i');
      return re.test(String(cell));
    }
    default: throw new Error(`unsupported operator ${operator}`);
  }
}

function runQuery(sql) {
  const q = parseSelect(sql);
  const rows = tables[q.table];
  if (!rows) throw new Error(`unknown table ${q.table} (tables: ${Object.keys(tables).join(', ')})`);
  let result = rows.filter((row) => q.where.every((cond) => compare(row, cond)));
  if (q.count) return [{ count: result.length }];
  if (q.order) {
    const { column, desc } = q.order;
    result = [...result].sort((a, b) => (a[column] < b[column] ? -1 : a[column] > b[column] ? 1 : 0) * (desc ? -1 : 1));
  }
  if (q.limit !== undefined) result = result.slice(0, q.limit);
  if (q.columns[0] === '*') return result.map((row) => ({ ...row }));
  return result.map((row) =>
    Object.fromEntries(q.columns.map((c) => {
      if (!(c in row)) throw new Error(`unknown column ${c}`);
      return [c, row[c]];
    })),
  );
}

await runServer({
  name: 'database',
  defineTools(register) {
    register(
      'query',
      {
        title: 'Query the database',
        description: 'Run a read-only SQL SELECT against the customers and orders tables.',
        inputSchema: { sql: z.string().max(2000).describe('One SELECT statement, e.g. SELECT * FROM orders WHERE total > 20') },
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      async ({ sql }) => {
        try {
          return text(runQuery(sql));
        } catch (error) {
          return text(`query error: ${error.message}`, true);
        }
      },
    );
    register(
      'update',
      {
        title: 'Update a row',
        description: 'Change fields of one row, found by id, in the customers or orders table.',
        inputSchema: {
          table: z.enum(['customers', 'orders']),
          id: z.number().int(),
          fields: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).describe('Column values to set'),
        },
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      },
      async ({ table, id, fields }) => {
        const row = tables[table].find((r) => r.id === id);
        if (!row) return text(`no row with id ${id} in ${table}`, true);
        for (const column of Object.keys(fields)) {
          if (column === 'id' || !(column in row)) return text(`cannot set column ${column} on ${table}`, true);
        }
        Object.assign(row, fields);
        return text({ updated: table, row });
      },
    );
  },
});
