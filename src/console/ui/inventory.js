// What the policy and the upstreams define: agents, and upstream tools with their
// discovery findings and pin state.
import { getJson } from './api.js';
import { html, useEffect, useState } from './html.js';
import { Badge, ErrorNote } from './widgets.js';

function useJson(path) {
  const [state, setState] = useState({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    getJson(path).then(
      (data) => live && setState({ data, error: null }),
      (error) => live && setState({ data: null, error }),
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Agents() {
  const { data, error, reload } = useJson('/console/api/agents');
  return html`<section>
    <h2>Agents <button onClick=${reload}>Refresh</button></h2>
    <${ErrorNote} error=${error} />
    ${data?.mode === 'capability' && html`<p class="note">The policy defines no agents: a token alone authorizes a call.</p>`}
    <p class="note">Key fingerprints are the first 12 hex digits of each key's SHA-256 (as <code>capframe agents add</code> prints it); the keys themselves are never stored.</p>
    <table class="agents">
      <thead><tr><th>agent</th><th>auto_mint</th><th>key fingerprint</th><th>holder keys</th><th>rules naming it</th></tr></thead>
      <tbody>
        ${data?.agents.map(
          (a) => html`<tr key=${a.name} data-agent=${a.name}>
            <td>${a.name}</td>
            <td>${a.auto_mint ? 'yes' : 'no'}</td>
            <td><code>${a.key_fingerprint}…</code></td>
            <td>${a.holder_keys.length === 0 ? '—' : a.holder_keys.map((k) => html`<code class="key">${k}</code>`)}</td>
            <td>${a.rules.map((r) => html`<div><${Badge} kind=${r.effect} /> ${r.tool}${r.capability ? ` (${r.capability})` : ''} <span class="muted">line ${r.line}</span></div>`)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${data?.rules_for_every_agent.length > 0 &&
    html`<p class="note">Rules without an <code>agents</code> list apply to every caller: ${data.rules_for_every_agent.map((r) => `${r.tool} (line ${r.line})`).join(', ')}.</p>`}
  </section>`;
}

const PIN_TEXT = { locked: 'locked', drifted: 'drifted', not_in_lock: 'not in lock', no_lock: 'no lock file' };

function Findings({ findings }) {
  if (findings.length === 0) return html`<span class="muted">none</span>`;
  return html`<ul class="findings">
    ${findings.map((f) => html`<li><${Badge} kind=${f.severity} /> <strong>${f.rule}</strong> ${f.title}<div class="muted">${f.detail}</div></li>`)}
  </ul>`;
}

export function Tools() {
  const { data, error, reload } = useJson('/console/api/tools');
  return html`<section>
    <h2>Upstream tools <button onClick=${reload}>Refresh</button></h2>
    <p class="note">Findings are the <code>capframe discover</code> rules run over the definitions this server was given; pin state is against <code>capframe.lock.json</code>.</p>
    <${ErrorNote} error=${error} />
    ${data?.servers.map(
      (s) => html`<div class="server" key=${s.server} data-server=${s.server}>
        <h3>${s.server} <${Badge} kind=${s.up ? 'up' : 'down'} /> ${s.restarts > 0 && html`<span class="muted">${s.restarts} restart(s)</span>`}</h3>
        ${s.lastError && html`<p class="error">${s.lastError}</p>`}
        <table class="tools">
          <thead><tr><th>tool</th><th>status</th><th>pin</th><th>risk</th><th>findings</th></tr></thead>
          <tbody>
            ${s.tools.map(
              (t) => html`<tr key=${t.name} data-tool=${t.name} data-pin=${t.pin} data-status=${t.status}>
                <td><strong>${t.name}</strong><div class="muted">${t.description}</div>${t.reason && html`<div class="reason">${t.reason}</div>`}</td>
                <td><${Badge} kind=${t.status} /></td>
                <td><${Badge} kind=${t.pin}>${PIN_TEXT[t.pin]}<//></td>
                <td><${Badge} kind=${t.risk} /></td>
                <td><${Findings} findings=${t.findings} /></td>
              </tr>`,
            )}
          </tbody>
        </table>
        ${s.omitted > 0 && html`<p class="note">${s.omitted} more tool(s) not shown.</p>`}
        ${s.lockedMissing.length > 0 && html`<p class="note">Locked but no longer listed: ${s.lockedMissing.join(', ')}</p>`}
      </div>`,
    )}
  </section>`;
}
