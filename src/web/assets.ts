/**
 * Static assets of the hosted pages, compiled in (no file to copy at build time, nothing read
 * from disk per request). One stylesheet: readable type, large touch targets, visible focus,
 * light and dark schemes, no web fonts, no images.
 */
import { createHash } from 'node:crypto';
import type { App } from '../http/app.js';

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
`;

const ETAG = `"${createHash('sha256').update(APP_CSS).digest('base64url').slice(0, 16)}"`;

export async function webAssets(app: App): Promise<void> {
  app.get('/assets/app.css', { schema: { hide: true } }, async (req, reply) => {
    reply.header('etag', ETAG);
    reply.header('cache-control', 'public, max-age=3600');
    if (req.headers['if-none-match'] === ETAG) return reply.code(304).send();
    return reply.type('text/css; charset=utf-8').send(APP_CSS);
  });
}
