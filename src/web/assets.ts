/**
 * Static assets of the hosted pages, compiled in (no file to copy at build time, nothing read
 * from disk per request). One stylesheet: readable type, large touch targets, visible focus,
 * light and dark schemes, no web fonts, no images.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { App } from '../http/app.js';
import { ALTCHA_INIT_JS, PASSKEY_JS, CONSOLE_JS } from './scripts.js';

export const APP_CSS = `:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --fg: #1b1f24; --muted: #5b6470; --card: #ffffff; --line: #d3d8df;
  --accent: #1f5fbf; --accent-fg: #ffffff; --ok: #1d6b3a; --ok-bg: #e6f4ea; --err: #a3211b; --err-bg: #fbe9e7; --info-bg: #e8f0fb;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111418; --fg: #e8ebef; --muted: #a3acb8; --card: #1a1f25; --line: #33404d;
    --accent: #7fb0ff; --accent-fg: #0b1220; --ok: #8fd6a5; --ok-bg: #173323; --err: #ffb4a9; --err-bg: #3b1714; --info-bg: #17263b;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
header.site { padding: 0.75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
.brand { font-weight: 700; letter-spacing: 0.02em; }
main {
  max-width: 28rem; margin: 1.5rem auto; padding: 1.25rem;
  background: var(--card); border: 1px solid var(--line); border-radius: 0.5rem;
}
@media (max-width: 30rem) { main { margin: 0; border-radius: 0; border-width: 0 0 1px 0; } }
h1 { font-size: 1.4rem; line-height: 1.25; margin: 0 0 1rem; }
p { margin: 0 0 1rem; }
a { color: var(--accent); }
form { display: grid; gap: 1rem; }
.field { display: grid; gap: 0.3rem; }
label { font-weight: 600; }
.hint { color: var(--muted); font-size: 0.9rem; margin: 0; }
input[type=email], input[type=password], input[type=text] {
  width: 100%; min-height: 2.75rem; padding: 0.5rem 0.75rem; font: inherit; color: inherit;
  background: var(--bg); border: 1px solid var(--line); border-radius: 0.375rem;
}
button {
  min-height: 2.75rem; padding: 0.5rem 1rem; font: inherit; font-weight: 600; cursor: pointer;
  color: var(--accent-fg); background: var(--accent); border: 0; border-radius: 0.375rem;
}
button.secondary { color: var(--fg); background: transparent; border: 1px solid var(--line); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.notice { padding: 0.75rem 1rem; border-radius: 0.375rem; background: var(--info-bg); }
.notice.success { background: var(--ok-bg); color: var(--ok); }
.notice.error { background: var(--err-bg); color: var(--err); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
/* Pages beyond the single-form ones: header navigation, wide dashboards, tables, badges. */
header.site { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; }
nav.site { display: flex; flex-wrap: wrap; align-items: center; gap: 0.25rem 1rem; margin-left: auto; }
nav.site a { text-decoration: none; padding: 0.25rem 0; }
nav.site a[aria-current=page] { font-weight: 700; text-decoration: underline; text-underline-offset: 0.3em; }
footer.site { max-width: 64rem; margin: 1rem auto 2rem; padding: 0 1.25rem; color: var(--muted); font-size: 0.9rem; text-align: center; }
main.wide { max-width: 64rem; }
main.wide > h1 { margin-bottom: 0.5rem; }
h2 { font-size: 1.15rem; line-height: 1.3; margin: 0 0 0.75rem; }
h2.section { margin-top: 1.5rem; }
section.card, article.card { border-top: 1px solid var(--line); padding-top: 1.25rem; margin-top: 1.25rem; }
section.card.prompt { border: 2px solid var(--accent); border-radius: 0.5rem; padding: 1rem; background: var(--info-bg); }
nav.toc { display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin-bottom: 0.5rem; font-size: 0.95rem; }
form.inline { display: inline-flex; gap: 0.5rem; align-items: center; margin: 0; }
form.row { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
.actions { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-end; }
.actions > form { flex: 1 1 16rem; }
button.danger { background: var(--err); color: #fff; }
@media (prefers-color-scheme: dark) { button.danger { color: #1b0605; } }
button.link { background: none; border: 0; padding: 0.25rem 0; min-height: 0; color: var(--accent); text-decoration: underline; font-weight: 400; }
.field-error { color: var(--err); font-weight: 600; margin: 0; }
.has-error input, input[aria-invalid=true] { border-color: var(--err); border-width: 2px; }
.check { display: flex; gap: 0.5rem; align-items: center; }
.check input { width: 1.25rem; height: 1.25rem; margin: 0; }
.check label { font-weight: 400; }
.table-wrap { overflow-x: auto; margin: 0 0 1rem; }
table { width: 100%; border-collapse: collapse; font-size: 0.95rem; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; vertical-align: top; padding: 0.5rem 0.5rem; border-bottom: 1px solid var(--line); }
thead th { color: var(--muted); font-weight: 600; font-size: 0.85rem; }
tr.current td { background: var(--ok-bg); }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.8rem; font-weight: 700; background: var(--info-bg); white-space: nowrap; }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.warn { background: #fff3d6; color: #7a4b00; }
.badge.bad { background: var(--err-bg); color: var(--err); }
@media (prefers-color-scheme: dark) { .badge.warn { background: #3a2a08; color: #ffd58a; } }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; overflow-wrap: break-word; }
code.wrap, h2 code { overflow-wrap: anywhere; }
code.secret { font-size: 1rem; letter-spacing: 0.05em; }
ul.codes { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: 0.5rem; padding: 0; list-style: none; }
ul.codes code { display: block; padding: 0.5rem; border: 1px dashed var(--line); border-radius: 0.25rem; text-align: center; font-size: 1rem; }
ol.steps { padding-left: 1.25rem; display: grid; gap: 0.75rem; }
img.qr { display: block; width: 200px; height: 200px; margin: 0.5rem 0; background: #fff; border-radius: 0.25rem; }
ul.inbox { list-style: none; padding: 0; margin: 0; }
ul.inbox li { padding: 0.75rem 0; border-bottom: 1px solid var(--line); }
ul.inbox li p { margin: 0 0 0.25rem; }
ul.inbox li.unread { border-left: 3px solid var(--accent); padding-left: 0.75rem; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; font-weight: 600; padding: 0.25rem 0; }
details > form { margin-top: 0.75rem; }
.status-notice .meta { color: var(--muted); }
.status-notice.sev-critical, .status-notice.sev-warning { border-left: 4px solid var(--err); padding-left: 1rem; }
.challenge { padding: 0.75rem; border: 1px dashed var(--line); border-radius: 0.375rem; }
altcha-widget { display: block; }
nav.site button.link { text-decoration: none; font-size: 1rem; }
td.action { text-align: right; }
@media (max-width: 40rem) {
  main.wide { margin: 0; border-radius: 0; border-width: 0 0 1px 0; padding: 1rem; }
  /* Person-facing tables become one card per row, each value under its column's name. */
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack tr { display: block; padding: 0.5rem 0; border-bottom: 1px solid var(--line); }
  table.stack td { display: block; position: relative; border: 0; padding: 0.15rem 0.25rem 0.15rem 7.5rem; min-height: 1.6rem; }
  table.stack td::before { content: attr(data-label); position: absolute; left: 0.25rem; width: 7rem; color: var(--muted); font-size: 0.85rem; padding-top: 0.1rem; }
  table.stack td.action { text-align: left; padding: 0.5rem 0.25rem 0; }
  table.stack td.action::before { content: none; }
  nav.site { margin-left: 0; }
  th, td { padding: 0.4rem 0.3rem; }
  .actions > form { flex-basis: 100%; }
}

.passkey { margin: 1.25rem 0; padding-top: 1rem; border-top: 1px solid var(--line, #ddd); }
`;

/** The console's extra rules (dashboards, charts, forms with selects), loaded only there. */
export const CONSOLE_CSS = `textarea, select {
  width: 100%; padding: 0.5rem 0.75rem; font: inherit; color: inherit;
  background: var(--bg); border: 1px solid var(--line); border-radius: 0.375rem;
}
dl.evidence { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0 0 1rem; }
dl.evidence dt { color: var(--muted); }
dl.evidence dd { margin: 0; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: 0.75rem; margin-bottom: 0.5rem; }
.tile { display: block; padding: 0.75rem 1rem; border: 1px solid var(--line); border-radius: 0.5rem; text-decoration: none; color: var(--fg); }
.tile .n { display: block; font-size: 1.75rem; font-weight: 700; }
.tile.alert { border-color: var(--err); background: var(--err-bg); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: 1rem; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 0.25rem; }
.chart { min-height: 240px; }
code.small { font-size: 0.75rem; }
form.row input[type=text], form.row input[type=email] { width: auto; flex: 1 1 12rem; }
select { width: auto; min-height: 2.75rem; }
fieldset { border: 1px solid var(--line); border-radius: 0.375rem; padding: 0.75rem 1rem; display: grid; gap: 0.5rem; }
legend { font-weight: 600; padding: 0 0.25rem; }
`;

const ETAG = `"${createHash('sha256').update(APP_CSS).digest('base64url').slice(0, 16)}"`;

interface Asset {
  body: string;
  type: string;
  etag: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

function asset(body: string, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
}

let vendored: Record<string, Asset> | null = null;

/**
 * Third-party browser code, read once from node_modules (the installed, pinned versions) and
 * served from this origin: the ALTCHA widget's CSP-friendly "external" build with its stylesheet
 * and PBKDF2 worker, and uPlot. A missing file is a boot error, not a broken page later.
 */
function vendorAssets(): Record<string, Asset> {
  if (vendored) return vendored;
  const require = createRequire(import.meta.url);
  const altcha = dirname(require.resolve('altcha/external')); // .../altcha/dist/external
  const uplot = dirname(require.resolve('uplot')); // .../uplot/dist
  const read = (file: string) => readFileSync(file, 'utf8');
  vendored = {
    'altcha.js': asset(read(join(altcha, 'altcha.min.js')), JS),
    'altcha.css': asset(read(join(altcha, 'altcha.css')), CSS),
    'altcha-pbkdf2.js': asset(read(join(altcha, '..', 'workers', 'pbkdf2.js')), JS),
    // The IIFE build defines `var uPlot`; as a module that binding is local, so export it.
    'uplot.js': asset(`${read(join(uplot, 'uPlot.iife.min.js'))}\nexport default uPlot;\n`, JS),
    'uplot.css': asset(read(join(uplot, 'uPlot.min.css')), CSS),
  };
  return vendored;
}

export async function webAssets(app: App): Promise<void> {
  app.get('/assets/app.css', { schema: { hide: true } }, async (req, reply) => {
    reply.header('etag', ETAG);
    reply.header('cache-control', 'public, max-age=3600');
    if (req.headers['if-none-match'] === ETAG) return reply.code(304).send();
    return reply.type('text/css; charset=utf-8').send(APP_CSS);
  });

  const files: Record<string, Asset> = { ...vendorAssets(), 'altcha-init.js': asset(ALTCHA_INIT_JS, JS), 'passkey.js': asset(PASSKEY_JS, JS), 'console.js': asset(CONSOLE_JS, JS), 'console.css': asset(CONSOLE_CSS, CSS) };
  for (const [name, a] of Object.entries(files)) {
    app.get(`/assets/${name}`, { schema: { hide: true } }, async (req, reply) => {
      reply.header('etag', a.etag);
      reply.header('cache-control', 'public, max-age=3600');
      if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
      return reply.type(a.type).send(a.body);
    });
  }
}
