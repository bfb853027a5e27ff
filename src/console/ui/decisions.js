// Live decisions: the server-sent event stream of the audit log, filtered on the server
// by agent, tool (exact, or a prefix ending in *) and code.
import { loadSession } from './api.js';
import { html, useEffect, useRef, useState } from './html.js';
import { Badge, RevokeButton, formatLatency } from './widgets.js';

const MAX_ROWS = 500;

function Filters({ value, onChange }) {
  const [draft, setDraft] = useState(value);
  const submit = (e) => {
    e.preventDefault();
    onChange({ ...draft });
  };
  const field = (name, placeholder) =>
    html`<label>${name}<input name=${name} value=${draft[name]} placeholder=${placeholder}
      onInput=${(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} /></label>`;
  return html`<form class="filters" onSubmit=${submit}>
    ${field('agent', 'any agent')} ${field('tool', 'any tool, or server.*')} ${field('code', 'any code')}
    <button type="submit">Filter</button>
    <button type="button" onClick=${() => { const none = { agent: '', tool: '', code: '' }; setDraft(none); onChange(none); }}>Clear</button>
  </form>`;
}

export function Decisions({ logArgs }) {
  const [filter, setFilter] = useState({ agent: '', tool: '', code: '' });
  const [rows, setRows] = useState([]);
  const [status, setStatus] = useState('connecting');
  const [invalid, setInvalid] = useState(0);
  const [revoked, setRevoked] = useState(() => new Set());
  const seen = useRef(new Set());

  useEffect(() => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== '') params.set(k, v);
    seen.current = new Set();
    setRows([]);
    setInvalid(0);
    setStatus('connecting');
    const source = new EventSource(`/console/api/decisions/stream?${params}`);
    source.onopen = () => setStatus('live');
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return setStatus('reconnecting');
      setStatus('closed');
      // Refused for good (401 when the session ended, 429 with too many tabs): a signed-out page goes to the login form.
      loadSession().catch(() => undefined);
    };
    source.addEventListener('decision', (event) => {
      const d = JSON.parse(event.data);
      // A reconnect replays recent history: each line once.
      const key = `${d.seq}|${d.time}`;
      if (seen.current.has(key)) return;
      seen.current.add(key);
      setRows((old) => [d, ...old].slice(0, MAX_ROWS));
    });
    source.addEventListener('invalid', () => setInvalid((n) => n + 1));
    return () => source.close();
  }, [filter]);

  const markRevoked = (id) => setRevoked((old) => new Set(old).add(id));

  return html`<section>
    <h2>Live decisions <span class=${`status status-${status}`} data-status=${status}>${status}</span></h2>
    <${Filters} value=${filter} onChange=${setFilter} />
    ${invalid > 0 && html`<p class="error" role="alert">${invalid} audit line(s) are not valid records: check the audit chain.</p>`}
    ${logArgs ? html`<p class="note">audit.log_args is on: arguments are shown.</p>` : null}
    <table class="decisions">
      <thead><tr><th>time</th><th>agent</th><th>tool</th><th>decision</th><th>code</th><th>token</th><th>latency</th><th>reason</th></tr></thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="8" class="empty">Waiting for decisions…</td></tr>`}
        ${rows.map(
          (d) => html`<tr key=${`${d.seq}|${d.time}`} data-seq=${d.seq} data-code=${d.code} data-token=${d.token_id ?? ''} class=${`row-${d.decision}`}>
            <td title=${d.time}>${new Date(d.time).toLocaleTimeString()}</td>
            <td>${d.agent ?? '—'}</td>
            <td>${d.tool ?? '—'}</td>
            <td><${Badge} kind=${d.decision} /></td>
            <td><code>${d.code}</code></td>
            <td>${d.token_id
              ? html`<code>${d.token_id}</code> ${revoked.has(d.token_id) || d.code === 'revoked'
                  ? html`<${Badge} kind="revoked" />`
                  : html`<${RevokeButton} id=${d.token_id} onRevoked=${markRevoked} />`}`
              : '—'}</td>
            <td>${formatLatency(d.latency_us)}</td>
            <td class="reason">${d.reason}${d.args !== undefined ? html`<pre>${JSON.stringify(d.args)}</pre>` : null}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
