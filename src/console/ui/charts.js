// Small horizontal bar charts drawn as SVG by Preact components (no chart library needed
// for bars): one row per label, stacked segments, the total at the end of each bar.
import { html } from './html.js';

const ROW = 22;
const LABEL = 170;
const WIDTH = 560;
const BAR = WIDTH - LABEL - 90;

/**
 * rows: [{ label, segments: [{ value, kind, title }] }]; `format` turns a total into text.
 */
export function BarChart({ title, rows, format = String, stacked = true }) {
  const totals = rows.map((r) => (stacked ? r.segments.reduce((s, x) => s + x.value, 0) : Math.max(0, ...r.segments.map((x) => x.value))));
  const max = Math.max(1, ...totals);
  const height = Math.max(1, rows.length) * ROW + 4;
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    ${rows.length === 0
      ? html`<p class="muted">No decisions yet.</p>`
      : html`<svg viewBox=${`0 0 ${WIDTH} ${height}`} width=${WIDTH} height=${height} role="img" aria-label=${title}>
          ${rows.map((r, i) => {
            const y = i * ROW + 2;
            let x = LABEL;
            const bars = r.segments.map((s) => {
              const w = (s.value / max) * BAR;
              const at = stacked ? x : LABEL;
              if (stacked) x += w;
              return html`<rect class=${`bar bar-${s.kind}`} x=${at} y=${y + 3} width=${Math.max(w, s.value > 0 ? 1 : 0)} height=${ROW - 8}><title>${s.title}</title></rect>`;
            });
            return html`<g key=${r.label} data-label=${r.label}>
              <text class="label" x=${LABEL - 6} y=${y + ROW / 2 + 2} text-anchor="end">${r.label.length > 26 ? `${r.label.slice(0, 25)}…` : r.label}</text>
              ${stacked ? bars : [...bars].reverse()}
              <text class="value" x=${LABEL + (totals[i] / max) * BAR + 6} y=${y + ROW / 2 + 2}>${format(totals[i])}</text>
            </g>`;
          })}
        </svg>`}
  </figure>`;
}
