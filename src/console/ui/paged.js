// A newest-first list read a page at a time with the server's cursors.
import { getJson } from './api.js';
import { useCallback, useEffect, useState } from './html.js';

export function usePaged(path, pageSize = 50) {
  const [cursors, setCursors] = useState([undefined]);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const cursor = cursors[cursors.length - 1];
  useEffect(() => {
    let live = true;
    const params = new URLSearchParams({ limit: String(pageSize) });
    if (cursor !== undefined) params.set('before', cursor);
    getJson(`${path}?${params}`).then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [path, cursor, tick]);
  return {
    data,
    error,
    page: cursors.length - 1,
    hasOlder: data?.next !== undefined,
    newest: useCallback(() => setCursors([undefined]), []),
    older: useCallback(() => data?.next !== undefined && setCursors((c) => [...c, data.next]), [data]),
    reload: useCallback(() => setTick((t) => t + 1), []),
  };
}
