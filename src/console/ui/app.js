// The console's shell: signs the page in (the session's CSRF token), then one view per tab.
import { logout, loadSession } from './api.js';
import { Decisions } from './decisions.js';
import { html, render, useEffect, useState } from './html.js';
import { Agents, Tools } from './inventory.js';
import { Overview } from './overview.js';
import { Revocations, Tokens } from './tokens.js';
import { ErrorNote } from './widgets.js';

const TABS = [
  ['decisions', 'Live decisions'],
  ['tokens', 'Tokens'],
  ['revocations', 'Revocations'],
  ['agents', 'Agents'],
  ['tools', 'Tools'],
  ['overview', 'Audit & charts'],
];

const tabFromHash = () => {
  const name = location.hash.slice(1);
  return TABS.some(([t]) => t === name) ? name : 'decisions';
};

function App() {
  const [session, setSession] = useState(null);
  const [error, setError] = useState(null);
  const [tab, setTab] = useState(tabFromHash);
  useEffect(() => {
    loadSession().then(setSession, setError);
    const onHash = () => setTab(tabFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  if (error) return html`<main><${ErrorNote} error=${error} /></main>`;
  if (!session) return html`<main><p class="muted">Loading…</p></main>`;
  return html`<header class="top">
      <h1>Capframe console</h1>
      <nav>${TABS.map(([name, label]) => html`<a href=${`#${name}`} data-tab=${name} class=${tab === name ? 'active' : ''}>${label}</a>`)}</nav>
      <span class="muted">backend ${session.backend}</span>
      <button data-action="logout" onClick=${logout}>Sign out</button>
    </header>
    <main>
      ${tab === 'decisions' && html`<${Decisions} logArgs=${session.log_args} />`}
      ${tab === 'tokens' && html`<${Tokens} />`}
      ${tab === 'revocations' && html`<${Revocations} />`}
      ${tab === 'agents' && html`<${Agents} />`}
      ${tab === 'tools' && html`<${Tools} />`}
      ${tab === 'overview' && html`<${Overview} />`}
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
