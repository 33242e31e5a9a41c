// The browser pages the agent and the console serve: loaded once from the build (dist/pages, or pages/
// beside a device bundle's edgetune.js), or built from their sources when running from a checkout,
// and sent with a Content-Security-Policy that lets only their own inline script and style run.

import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuiltPage, PageName } from './web-page-build.js';

export type { BuiltPage, PageName };

const loaded = new Map<PageName, Promise<BuiltPage>>();

/** The page, built once per process. */
export function loadPage(name: PageName): Promise<BuiltPage> {
  let page = loaded.get(name);
  if (!page) {
    page = readOrBuild(name);
    loaded.set(name, page);
  }
  return page;
}

async function readOrBuild(name: PageName): Promise<BuiltPage> {
  const file = fileURLToPath(import.meta.url);
  if (file.endsWith('.ts')) {
    // A checkout run by tsx or vitest: build from the sources so the page is never stale. Named by a
    // variable so that esbuild leaves the builder (and esbuild itself) out of the device bundle.
    const builder = './web-page-build.js';
    const { buildPage } = (await import(builder)) as { buildPage(name: PageName): Promise<BuiltPage> };
    return buildPage(name);
  }
  const here = dirname(file);
  // dist/core/web-page.js reads dist/pages; a device bundle's edgetune.js reads pages/ beside it.
  const candidates = [join(here, '..', 'pages', `${name}.json`), join(here, 'pages', `${name}.json`)];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`the ${name} page is not built: run npm run build (looked for ${candidates.join(', ')})`);
  return JSON.parse(readFileSync(found, 'utf8')) as BuiltPage;
}

/** Only the page's own inline script and style run, it talks only to its server, and no one frames it. */
export function pageSecurityPolicy(page: BuiltPage): string {
  return [
    "default-src 'none'",
    `script-src '${page.scriptHash}'`,
    `style-src '${page.styleHash}'`,
    "img-src 'self' blob: data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function sendPage(res: ServerResponse, page: BuiltPage): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': pageSecurityPolicy(page),
    // The token in the page's URL is never sent to another site.
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
  res.end(page.html);
}
