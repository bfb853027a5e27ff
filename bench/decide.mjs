// Policy `decide` on a 50-rule policy (target: median ≤ 1 µs). Needs `npm run build:ts`.
// Standalone: `node bench/decide.mjs`; `bench/run.mjs` imports runDecideBench().
import { fileURLToPath } from 'node:url';

import { parsePolicy } from '../dist/policy/index.js';
import { machine, measure, printTable } from './lib.mjs';

/** Calls per timed sample, so a sub-microsecond call is not lost in timer resolution. */
const OPS = 200;

/** 50 rules: 40 allow rules with constraints over 10 servers, 5 glob allows, 5 deny rules. */
export function fiftyRulePolicy() {
  const servers = ['database', 'payments', 'files', 'http', 'mail', 'crm', 'tickets', 'search', 'calendar', 'wiki'];
  const tools = ['read', 'list', 'update', 'delete'];
  const lines = [
    'capframe:',
    '  version: "0.2"',
    '  default_policy: deny',
    '  agents:',
    `    support-bot: { key_sha256: "${'ab'.repeat(32)}" }`,
    `    ops-bot: { key_sha256: "${'cd'.repeat(32)}" }`,
    '  capabilities:',
    '    small:',
    '      when: [{ arg: amount, op: "<=", value: 50 }, { arg: currency, op: in, value: [EUR, USD, GBP] }]',
    '  rules:',
  ];
  for (const s of servers) {
    for (const t of tools) {
      lines.push(`    - tool: ${s}.${t}`, '      agents: [support-bot, ops-bot]', '      when:', '        - { arg: id, op: ">=", value: 1 }', '        - { arg: note, op: max_length, value: 200 }');
    }
  }
  lines.push('    - tool: payments.refund', '      capability: small', '      agents: [support-bot]', '      when: [{ arg: reason, op: "!=", value: "" }]');
  lines.push('    - tool: "files.read_*"', '      when: [{ arg: path, op: path_within, value: /srv/app }]');
  lines.push('    - tool: "http.get*"', '      when: [{ arg: url, op: url_origin_in, value: ["https://api.example.com"] }]');
  lines.push('    - tool: "search.*"', '      agents: [ops-bot]');
  lines.push('    - tool: "wiki.page_*"');
  for (const d of ['shell.*', 'database.drop*', 'payments.payout', 'mail.send_bulk', 'crm.export*']) lines.push(`    - tool: "${d}"`, '      effect: deny');
  const policy = parsePolicy(`${lines.join('\n')}\n`);
  if (policy.rules.length !== 50) throw new Error(`expected 50 rules, got ${policy.rules.length}`);
  return policy;
}

/** Runs the decide scenarios; returns rows of per-call nanoseconds. */
export async function runDecideBench() {
  const policy = fiftyRulePolicy();
  const cold = fiftyRulePolicy();
  // Fill the per-tool cache with other names so the cold task always scans all 50 rules.
  for (let i = 0; i < 5000; i++) cold.decide({ tool: `junk.t${i}`, args: {} });

  const scenarios = [
    ['allow: exact rule, 2 constraints (wiki.delete)', policy, { agent: 'support-bot', tool: 'wiki.delete', args: { id: 7, note: 'fix typo' } }, 'ok'],
    ['allow: rule + capability, 5 constraints', policy, { agent: 'support-bot', tool: 'payments.refund', args: { amount: 20, currency: 'EUR', reason: 'late' }, token: { tool: 'payments.refund', cap: 'small' } }, 'ok'],
    ['allow: glob rule, path_within', policy, { agent: 'ops-bot', tool: 'files.read_file', args: { path: '/srv/app/data/report.csv' } }, 'ok'],
    ['allow: glob rule, url_origin_in (repeated URL)', policy, { agent: 'ops-bot', tool: 'http.get_json', args: { url: 'https://api.example.com/v1/items' } }, 'ok'],
    ['deny: deny rule (shell.exec)', policy, { agent: 'ops-bot', tool: 'shell.exec', args: { command: 'ls' } }, 'denied_by_rule'],
    ['deny: constraint_failed (numeric string)', policy, { agent: 'support-bot', tool: 'crm.update', args: { id: '7', note: '' } }, 'constraint_failed'],
    ['deny: no_rule (unknown tool)', policy, { agent: 'support-bot', tool: 'unknown.tool', args: {} }, 'no_rule'],
    ['allow: tool not in cache (scans 50 rules)', cold, { agent: 'support-bot', tool: 'wiki.page_home', args: {} }, 'ok'],
  ];
  const tasks = scenarios.map(([name, p, input, code]) => {
    const got = p.decide(input).code;
    if (got !== code) throw new Error(`${name}: expected ${code}, got ${got}`);
    return {
      name,
      ops: OPS,
      fn: () => {
        for (let i = 0; i < OPS; i++) p.decide(input);
      },
    };
  });
  // A URL never seen before must be parsed: the honest figure for url_origin_in.
  const fresh = Array.from({ length: 4096 }, (_, i) => ({ agent: 'ops-bot', tool: 'http.get_json', args: { url: `https://api.example.com/v1/items/${i}` } }));
  let next = 0;
  tasks.push({
    name: 'allow: glob rule, url_origin_in (new URL each call)',
    ops: OPS,
    fn: () => {
      for (let i = 0; i < OPS; i++) policy.decide(fresh[next++ % fresh.length]);
    },
  });
  return measure(tasks, { time: 500, warmupTime: 200 });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`capframe decide benchmark — ${machine()}`);
  const rows = await runDecideBench();
  printTable('Policy decide (50 rules)', rows);
}
