// Small shared pieces of the views.
import { revokeToken } from './api.js';
import { html, useState } from './html.js';

export const formatTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
export const formatLatency = (us) => (us >= 1000 ? `${(us / 1000).toFixed(us >= 100_000 ? 0 : 1)} ms` : `${us} µs`);

export function ErrorNote({ error }) {
  return error ? html`<p class="error" role="alert">${String(error.message ?? error)}</p>` : null;
}

/** allow / deny / outcome, or a token state, as a coloured label. */
export function Badge({ kind, children }) {
  return html`<span class=${`badge badge-${kind}`}>${children ?? kind}</span>`;
}

/**
 * Revokes a token in two clicks (revocation cannot be undone): "Revoke", then "Confirm".
 * `onRevoked` runs once the server says the revocation is in force.
 */
export function RevokeButton({ id, onRevoked }) {
  const [step, setStep] = useState('idle');
  const [error, setError] = useState(null);
  const confirm = async () => {
    setStep('busy');
    try {
      const r = await revokeToken(id);
      if (!r.in_force) throw new Error('the server did not confirm the revocation');
      setStep('done');
      onRevoked?.(id);
    } catch (e) {
      setError(e);
      setStep('idle');
    }
  };
  if (step === 'done') return html`<${Badge} kind="revoked">revoked<//>`;
  return html`<span class="revoke">
    ${step === 'idle' && html`<button class="danger" data-action="revoke" data-token=${id} onClick=${() => setStep('confirm')}>Revoke</button>`}
    ${step === 'confirm' &&
    html`<button class="danger" data-action="confirm-revoke" data-token=${id} onClick=${confirm}>Confirm revoke</button>
      <button data-action="cancel-revoke" onClick=${() => setStep('idle')}>Cancel</button>`}
    ${step === 'busy' && html`<span>revoking…</span>`}
    ${error && html`<span class="error">${error.message}</span>`}
  </span>`;
}

/** Newest-first paging with the server's `next` cursors. */
export function Pager({ page, hasOlder, onNewest, onOlder }) {
  return html`<div class="pager">
    <button disabled=${page === 0} onClick=${onNewest}>Newest</button>
    <span>page ${page + 1}</span>
    <button disabled=${!hasOlder} onClick=${onOlder}>Older</button>
  </div>`;
}
