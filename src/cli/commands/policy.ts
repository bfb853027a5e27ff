import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { loadCasesSync, loadPolicy, runCases, type Policy } from '../../policy/index.js';
import { EXIT_DENIED, EXIT_ERROR, EXIT_OK, err, out } from '../exit.js';
import { shellQuote } from '../shell-quote.js';
import type { SetExit } from './index.js';

/** User errors print their own `file:line:column: …` lines, unprefixed, so editors can jump to them. */
function reportUserError(error: unknown, setExit: SetExit): void {
  if (!(error instanceof CapframeError)) throw error;
  for (const line of error.message.split('\n')) err(line);
  setExit(EXIT_ERROR);
}

/** Warnings go to stderr; the loud ones (default allow) keep their own WARNING: prefix. */
function warn(warnings: readonly string[]): void {
  for (const w of warnings) err(w.startsWith('WARNING:') ? w : `warning: ${w}`);
}

/**
 * What `policy check` adds to the policy's own load warnings: things that are
 * valid but that a new user rarely means. They are not load warnings because a
 * library user (`verify()` in a service) legitimately has no servers or agents.
 */
function advice(policy: Policy): string[] {
  const notes: string[] = [];
  if (Object.keys(policy.servers).length === 0) {
    notes.push('no servers: `capframe serve` would proxy no tools; add your MCP servers under servers: (stdio command or url)');
  }
  if (Object.keys(policy.agents).length === 0) {
    notes.push(
      'no agents: anyone holding a valid token may call (pure capability mode) and no caller authenticates; ' +
        'if that is not intended, run `capframe agents add <name>` and add the line it prints under agents:',
    );
  }
  return notes;
}

function summary(file: string, policy: Policy, warnings: number): string[] {
  const count = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  return [
    `OK ${file}`,
    `  version ${policy.version}, default_policy ${policy.defaultPolicy}`,
    `  ${count(Object.keys(policy.servers).length, 'server')}, ${count(Object.keys(policy.agents).length, 'agent')}, ` +
      `${count(Object.keys(policy.capabilities).length, 'capability').replace('capabilitys', 'capabilities')}, ${count(policy.rules.length, 'rule')}`,
    `  ${count(warnings, 'warning')}`,
  ];
}

/** The command to run next, ready to paste. */
function nextStep(file: string, policy: Policy): string {
  const serve = `capframe serve --policy ${shellQuote(file)} --port 8080`;
  return Object.keys(policy.servers).length === 0 ? `next: add your MCP servers under servers:, then ${serve}` : `next: ${serve}`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** `capframe policy check` and `capframe policy test`. */
export function registerPolicy(program: Command, setExit: SetExit): void {
  const policy = program.command('policy').description('validate a policy file and test it against example calls');

  policy
    .command('check')
    .description('validate a policy: prints a summary, warnings and the next step (exit 0), or every error as file:line:column (exit 1)')
    .argument('<file>', 'policy file')
    .action(async (file: string) => {
      try {
        const loaded = await loadPolicy(file);
        const warnings = [...loaded.warnings, ...advice(loaded)];
        for (const line of summary(file, loaded, warnings.length)) out(line);
        warn(warnings);
        out(nextStep(file, loaded));
        // Warnings never change the exit status: the policy is valid.
        setExit(EXIT_OK);
      } catch (error) {
        reportUserError(error, setExit);
      }
    });

  policy
    .command('test')
    .description('decide each case of a cases file with the policy alone; exit 2 if any case fails')
    .argument('<file>', 'policy file')
    .requiredOption('--cases <cases.yaml>', 'cases: [{name, agent?, tool, args, expect: allow|deny, code?}]')
    .action(async (file: string, opts: { cases: string }) => {
      try {
        const loaded = await loadPolicy(file);
        const cases = loadCasesSync(opts.cases);
        warn(loaded.warnings);
        const results = runCases(loaded, cases);
        const width = Math.min(48, Math.max(4, ...cases.map((c) => c.name.length)));
        out(`${pad('', 4)}  ${pad('CASE', width)}  ${pad('EXPECT', 24)}  GOT`);
        for (const r of results) {
          const expected = r.case.code === undefined ? r.case.expect : `${r.case.expect} ${r.case.code}`;
          const got = `${r.decision.allowed ? 'allow' : 'deny'} ${r.decision.code}`;
          out(`${r.passed ? 'pass' : 'FAIL'}  ${pad(r.case.name, width)}  ${pad(expected, 24)}  ${got}`);
          if (!r.passed) out(`      line ${r.case.line}: ${r.decision.reason}`);
        }
        const failed = results.filter((r) => !r.passed).length;
        out(`${results.length - failed} passed, ${failed} failed`);
        setExit(failed === 0 ? EXIT_OK : EXIT_DENIED);
      } catch (error) {
        reportUserError(error, setExit);
      }
    });
}
