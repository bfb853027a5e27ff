/**
 * The proxy's own pagination of the lists it assembles: a cursor is the offset of the
 * next page, opaque to clients. A list that changes between pages may repeat or skip an
 * entry, as MCP allows; the client learns of changes from list_changed.
 */
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';

import { RpcError } from '../rpc-error.js';

/** Entries per page of resources and resource templates. */
export const PAGE_SIZE = 500;

const CURSOR = /^o(\d{1,9})$/;

/**
 * One page of `items` from `cursor` (undefined: the first page).
 *
 * @example
 * page(['a', 'b', 'c'], undefined, 2); // { items: ['a', 'b'], nextCursor: 'o2' }
 */
export function page<T>(items: readonly T[], cursor: string | undefined, size = PAGE_SIZE): { items: T[]; nextCursor?: string } {
  let offset = 0;
  if (cursor !== undefined) {
    const m = CURSOR.exec(cursor);
    if (m === null) throw new RpcError(ErrorCode.InvalidParams, 'invalid cursor: pass the nextCursor of the previous page');
    offset = Number(m[1]);
  }
  const end = offset + size;
  return { items: items.slice(offset, end), ...(end < items.length && { nextCursor: `o${end}` }) };
}
