/**
 * The console's files: the pages and modules in src/console/ui/ (served as they are: no
 * build step) and the UI library's ES modules, resolved from node_modules when the server
 * starts. All are read into memory once; nothing is fetched from the network, and the
 * pages load only these files (the Content-Security-Policy says so to the browser).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CapframeError } from '../errors.js';

export interface Asset {
  type: string;
  body: Buffer;
}

export interface ConsoleAssets {
  /** Served under /console/assets/<name>. */
  files: ReadonlyMap<string, Asset>;
  /** The application page (its inline import map is allowed by hash in the CSP). */
  appPage: Buffer;
  loginPage(error?: string): Buffer;
  /** The Content-Security-Policy of every console response. */
  csp: string;
}

/** The console's own files, next to the server code in the package (src/console/ui/ from both src/ and dist/). */
export const UI_DIR = fileURLToPath(new URL('../../src/console/ui/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The UI library's modules: bare import specifier → the file served for it. */
const VENDOR: Readonly<Record<string, string>> = {
  preact: 'vendor/preact.mjs',
  'preact/hooks': 'vendor/preact-hooks.mjs',
  htm: 'vendor/htm.mjs',
};

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Loads every console file; throws a CapframeError naming what is missing.
 *
 * @example
 * const assets = loadConsoleAssets();
 * assets.files.get('app.js')?.type; // 'text/javascript; charset=utf-8'
 */
export function loadConsoleAssets(dir = UI_DIR): ConsoleAssets {
  const files = new Map<string, Asset>();
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new CapframeError('invalid_argument', `--console: cannot read ${what} (${path}): ${(error as Error).message}; reinstall capframe`, { cause: error });
    }
  };
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new CapframeError('invalid_argument', `--console: the console's files are missing (${dir}); reinstall capframe`, { cause: error });
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type === undefined || name.endsWith('.html')) continue;
    files.set(name, { type, body: read(join(dir, name), name) });
  }
  const imports: Record<string, string> = {};
  for (const [specifier, served] of Object.entries(VENDOR)) {
    let path: string;
    try {
      path = fileURLToPath(import.meta.resolve(specifier));
    } catch (error) {
      throw new CapframeError('invalid_argument', `--console: the UI library "${specifier}" is not installed; reinstall capframe (npm install)`, { cause: error });
    }
    files.set(served, { type: TYPES['.mjs']!, body: read(path, specifier) });
    imports[specifier] = `/console/assets/${served}`;
  }

  const importMap = JSON.stringify({ imports });
  const importMapHash = createHash('sha256').update(importMap).digest('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${importMapHash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');

  const page = (name: string) => read(join(dir, name), name).toString('utf8');
  const appPage = Buffer.from(page('index.html').replace('<!--IMPORTMAP-->', `<script type="importmap">${importMap}</script>`));
  const login = page('login.html');
  return {
    files,
    appPage,
    loginPage: (error) => Buffer.from(login.replace('<!--ERROR-->', error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(error)}</p>`)),
    csp,
  };
}
