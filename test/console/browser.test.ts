/**
 * The console end to end in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core: no browser download): sign in through the form, watch an SDK client's
 * tools/call appear live, revoke its token with the button, and see the next call denied
 * `revoked` — in the page and in the client's result. Screenshots of each step are saved
 * under test-artifacts/console/<backend>/ for CI to keep.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ROOT } from '../helpers.js';
import { connectHttp, expectDenial, type PolicyEnv } from '../proxy/e2e-helpers.js';
import { ADMIN_KEY, AGENT_KEY, callWith, consolePolicyEnv, requestToken, startConsole, type ConsoleServer } from './helpers.js';

/** Debian's package; CI installs it (`apt-get install -y chromium`). */
const CHROMIUM = process.env.CAPFRAME_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts', 'console', process.env.CAPFRAME_BACKEND ?? 'default');
const QUERY = { sql: 'SELECT * FROM customers' };
const STEP_MS = 30_000;

describe('operator console in headless Chromium', () => {
  let env: PolicyEnv;
  let server: ConsoleServer;
  let browser: Browser;
  let page: Page;
  let agent: Client;
  const problems: string[] = [];
  let shot = 0;
  const screenshot = async (name: string) => {
    await page.screenshot({ path: join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CAPFRAME_CHROMIUM`);
    mkdirSync(ARTIFACTS, { recursive: true });
    env = consolePolicyEnv();
    server = await startConsole(env);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Chromium's sandbox cannot start as root (CI runs as root).
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    // Any script error or CSP violation in the page is a failure of the console.
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    agent = await connectHttp(server.url, { authorization: `Bearer ${AGENT_KEY}` });
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await browser?.close();
    await server?.stop();
    env?.remove();
  });

  it('sign in, watch a call live, revoke its token, see the next call denied', { timeout: 180_000 }, async () => {
    // Without a session the console is the login form.
    await page.goto(`${server.origin}/console/`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await screenshot('login');

    await page.fill('#key', `${ADMIN_KEY}-wrong`);
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('p.error').textContent(), { timeout: STEP_MS }).toContain('Wrong admin key');
    expect(new URL(page.url()).pathname).toBe('/console/login');
    // The refused sign-in is the page's only failed load (the form's 401 answer).
    expect(problems).toEqual([expect.stringMatching(/status of 401/)]);
    problems.length = 0;

    await page.fill('#key', ADMIN_KEY);
    await page.click('button[type=submit]');
    await page.waitForURL(`${server.origin}/console/`);
    await page.locator('[data-status="live"]').waitFor();
    // The session cookie is out of the page's reach.
    expect(await page.evaluate('document.cookie')).toBe('');
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: 'capframe_console', path: '/console', httpOnly: true, sameSite: 'Strict' })]);

    // An agent (the official SDK client) gets a token and makes a call: it shows up live.
    const { token, id } = await requestToken(agent, 'database.query');
    const allowed = await callWith(agent, 'database.query', QUERY, token);
    expect(allowed.isError ?? false).toBe(false);
    const callRow = page.locator(`tr[data-token="${id}"][data-code="ok"]`).filter({ hasText: 'database.query' }).filter({ hasNotText: 'capframe.request_token' });
    await callRow.waitFor();
    await expect.poll(() => callRow.locator('td').nth(3).textContent(), { timeout: STEP_MS }).toBe('allow');
    expect(await callRow.textContent()).toContain('support-bot');
    await screenshot('call-live');

    // Revoke its token from that row (two clicks: revocation cannot be undone).
    await callRow.locator('[data-action="revoke"]').click();
    await screenshot('revoke-confirm');
    await callRow.locator('[data-action="confirm-revoke"]').click();
    await callRow.locator('.badge-revoked').waitFor();
    await screenshot('revoked');

    // The next call with that token is denied at once, and the upstream never sees it.
    const before = env.calls().length;
    const denied = await callWith(agent, 'database.query', QUERY, token);
    expectDenial(denied, 'revoked');
    expect(env.calls().length).toBe(before);
    const deniedRow = page.locator(`tr[data-token="${id}"][data-code="revoked"]`);
    await deniedRow.waitFor();
    expect(await deniedRow.locator('td').nth(3).textContent()).toBe('deny');
    await screenshot('next-call-denied');

    // The tokens view agrees, and the revocation list has it.
    await page.click('[data-tab="tokens"]');
    await page.locator(`tr[data-token="${id}"][data-state="revoked"]`).waitFor();
    await screenshot('tokens');
    await page.click('[data-tab="revocations"]');
    await page.locator(`tr[data-token="${id}"]`).waitFor();
    await screenshot('revocations');

    // The other views render from the same session.
    await page.click('[data-tab="agents"]');
    await page.locator('tr[data-agent="support-bot"]').waitFor();
    await screenshot('agents');
    await page.click('[data-tab="tools"]');
    await page.locator('tr[data-tool="database.query"][data-pin="no_lock"]').waitFor();
    await screenshot('tools');
    await page.click('[data-tab="overview"]');
    await page.locator('[data-audit="ok"]').waitFor();
    await page.locator('svg g[data-label="database.query"]').first().waitFor();
    await screenshot('audit-and-charts');

    // Sign out: back to the form, and the API refuses the old cookie.
    await page.click('[data-action="logout"]');
    await page.waitForURL(`${server.origin}/console/login`);
    const api = await page.context().request.get(`${server.origin}/console/api/tokens`);
    expect(api.status()).toBe(401);
    await screenshot('signed-out');

    expect(problems).toEqual([]);
  });
});
