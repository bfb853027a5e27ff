// The audit chain's status and per-tool decision counts and latency, from the audit log.
import { getJson } from './api.js';
import { BarChart } from './charts.js';
import { html, useEffect, useState } from './html.js';
import { ErrorNote, formatLatency, formatTime } from './widgets.js';

function AuditChain() {
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const check = async (refresh) => {
    setBusy(true);
    try {
      setStatus(await getJson(`/console/api/audit${refresh ? '?refresh=1' : ''}`));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void check(false), []);
  return html`<div class="panel audit" data-audit=${status ? (status.ok ? 'ok' : 'broken') : 'unknown'}>
    <h3>Audit chain <button disabled=${busy} onClick=${() => check(true)}>${busy ? 'Verifying…' : 'Verify now'}</button></h3>
    <${ErrorNote} error=${error} />
    ${status &&
    (status.ok
      ? html`<p class="ok-text">OK: ${status.lines} line(s), last seq ${status.lastSeq}; head <code>${status.head.slice(0, 16)}…</code></p>`
      : html`<p class="error" role="alert">${status.line > 0 ? `BROKEN at line ${status.line}: ` : ''}${status.problem}</p>`)}
    ${status && html`<p class="muted">${status.path} · checked ${formatTime(status.checked_at)}</p>`}
  </div>`;
}

function Charts() {
  const [stats, setStats] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      getJson('/console/api/stats').then(
        (s) => live && (setStats(s), setError(null)),
        (e) => live && setError(e),
      );
    load();
    const timer = setInterval(load, 5000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  const tools = stats?.tools ?? [];
  const counts = tools.map((t) => ({
    label: t.tool,
    segments: [
      { value: t.allow, kind: 'allow', title: `${t.allow} allowed` },
      { value: t.deny, kind: 'deny', title: `${t.deny} denied: ${Object.entries(t.codes).filter(([c]) => c !== 'ok').map(([c, n]) => `${c} ${n}`).join(', ')}` },
    ],
  }));
  const latency = tools.map((t) => ({
    label: t.tool,
    segments: [
      { value: t.p50, kind: 'p50', title: `median ${formatLatency(t.p50)}` },
      { value: t.p95, kind: 'p95', title: `95th percentile ${formatLatency(t.p95)}` },
    ],
  }));
  return html`<div class="panel charts">
    <${ErrorNote} error=${error} />
    <p class="muted">Over the audit log's last ${stats?.lines ?? 0} line(s)${stats?.from ? `, ${formatTime(stats.from)} – ${formatTime(stats.to)}` : ''}.</p>
    <div class="chart-row">
      <${BarChart} title="Decisions per tool (allowed / denied)" rows=${counts} />
      <${BarChart} title="Decision latency per tool (median / p95)" rows=${latency} stacked=${false} format=${formatLatency} />
    </div>
  </div>`;
}

export function Overview() {
  return html`<section>
    <h2>Overview</h2>
    <${AuditChain} />
    <${Charts} />
  </section>`;
}
