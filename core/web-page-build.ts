// Builds the browser pages (agent/page, console/page) into single HTML files with their CSS and
// TypeScript bundled inline by esbuild, and the sha256 of each for the page's Content-Security-Policy.
// `npm run build` runs this file to write dist/pages/<name>.json; a checkout builds on first use.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Where each page's index.html, page.css and main.ts live, from the checkout root. */
export const PAGE_SOURCES = { agent: 'agent/page', console: 'console/page' } as const;
export type PageName = keyof typeof PAGE_SOURCES;

export interface BuiltPage {
  html: string;
  /** CSP source expressions ('sha256-...') of the inline script and style. */
  scriptHash: string;
  styleHash: string;
}

const STYLE_TAG = /<link rel="stylesheet" href="page\.css" ?\/?>/;
const SCRIPT_TAG = /<script src="main\.ts"><\/script>/;

const cspHash = (text: string) => `sha256-${createHash('sha256').update(text).digest('base64')}`;

/** The checkout this file runs from: core/ in sources, dist/core/ once compiled. */
export function checkoutRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = join(here, '..');
  return existsSync(join(up, 'package.json')) ? up : join(up, '..');
}

async function bundle(entry: string, root: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    minify: true,
    platform: 'browser',
    format: 'iife',
    target: ['chrome100', 'firefox100', 'safari15'],
    legalComments: 'none',
    logLevel: 'silent',
    absWorkingDir: root,
    outdir: '/page',
  });
  const [out] = result.outputFiles;
  if (!out) throw new Error(`esbuild wrote nothing for ${entry}`);
  return out.text.trim();
}

function inline(html: string, tag: RegExp, replacement: string, file: string): string {
  const match = tag.exec(html);
  if (!match) throw new Error(`${file}: expected ${tag.source} where the built code goes`);
  return html.slice(0, match.index) + replacement + html.slice(match.index + match[0].length);
}

/** One page: index.html with page.css and main.ts (and what they import) inlined. */
export async function buildPage(name: PageName, root = checkoutRoot()): Promise<BuiltPage> {
  const dir = join(root, PAGE_SOURCES[name]);
  const htmlFile = join(dir, 'index.html');
  const [style, script] = await Promise.all([bundle(join(dir, 'page.css'), root), bundle(join(dir, 'main.ts'), root)]);
  // A closing tag inside the inlined text would end the element early.
  if (/<\/script/i.test(script)) throw new Error(`${dir}/main.ts: the bundle contains "</script"`);
  if (/<\/style/i.test(style)) throw new Error(`${dir}/page.css: the bundle contains "</style"`);
  let html = readFileSync(htmlFile, 'utf8');
  html = inline(html, STYLE_TAG, `<style>${style}</style>`, htmlFile);
  html = inline(html, SCRIPT_TAG, `<script>${script}</script>`, htmlFile);
  return { html, scriptHash: cspHash(script), styleHash: cspHash(style) };
}

/** Writes every page to <outDir>/<name>.json (what the servers and the device bundle serve). */
export async function writePages(outDir: string, root = checkoutRoot()): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const name of Object.keys(PAGE_SOURCES) as PageName[]) {
    const file = join(outDir, `${name}.json`);
    writeFileSync(file, `${JSON.stringify(await buildPage(name, root))}\n`);
    written.push(file);
  }
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = checkoutRoot();
  for (const file of await writePages(join(root, 'dist', 'pages'), root)) console.log(`built ${file}`);
}
