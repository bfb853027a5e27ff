// Issued tokens (from the store's ledger) with a revoke button, and the revocation list.
import { html } from './html.js';
import { usePaged } from './paged.js';
import { Badge, ErrorNote, Pager, RevokeButton, formatTime } from './widgets.js';

export function Tokens() {
  const list = usePaged('/console/api/tokens');
  return html`<section>
    <h2>Issued tokens <button onClick=${list.reload}>Refresh</button></h2>
    <p class="note">Newest first. The token itself never leaves the server; revoking is in force at once.</p>
    <${ErrorNote} error=${list.error} />
    <table class="tokens">
      <thead><tr><th>id</th><th>agent</th><th>tool</th><th>capability</th><th>issued</th><th>expires</th><th>state</th><th></th></tr></thead>
      <tbody>
        ${list.data?.items.length === 0 && html`<tr><td colspan="8" class="empty">No tokens issued yet.</td></tr>`}
        ${list.data?.items.map(
          (t) => html`<tr key=${t.id} data-token=${t.id} data-state=${t.state}>
            <td><code>${t.id}</code></td>
            <td>${t.agent ?? '—'}</td>
            <td>${t.tool}</td>
            <td>${t.capability ?? '—'}</td>
            <td>${formatTime(t.issued_at)}</td>
            <td>${formatTime(t.expires_at)}</td>
            <td><${Badge} kind=${t.state} /></td>
            <td>${t.state === 'active' ? html`<${RevokeButton} id=${t.id} onRevoked=${list.reload} />` : null}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <${Pager} page=${list.page} hasOlder=${list.hasOlder} onNewest=${list.newest} onOlder=${list.older} />
  </section>`;
}

export function Revocations() {
  const list = usePaged('/console/api/revocations');
  return html`<section>
    <h2>Revocations <button onClick=${list.reload}>Refresh</button></h2>
    <p class="note">The store's revocation log, newest first (revocations by the CLI, the API and this console).</p>
    <${ErrorNote} error=${list.error} />
    <table class="revocations">
      <thead><tr><th>token id</th><th>revoked at</th></tr></thead>
      <tbody>
        ${list.data?.items.length === 0 && html`<tr><td colspan="2" class="empty">Nothing revoked.</td></tr>`}
        ${list.data?.items.map((r) => html`<tr key=${r.id} data-token=${r.id}><td><code>${r.id}</code></td><td>${formatTime(r.time)}</td></tr>`)}
      </tbody>
    </table>
    <${Pager} page=${list.page} hasOlder=${list.hasOlder} onNewest=${list.newest} onOlder=${list.older} />
  </section>`;
}
