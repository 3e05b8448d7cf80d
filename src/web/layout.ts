/**
 * The hosted pages' shared layout. Invariants:
 * - every value interpolated into `html` is escaped, unless it is itself the result of `html`
 *   (a SafeHtml): there is no way to splice a raw string in by accident;
 * - pages carry no inline script or style (the CSP forbids both); styling is /assets/app.css;
 * - forms work without JavaScript.
 */
import type { FastifyReply } from 'fastify';

/** Markup that is already safe (built by `html`). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function render(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

/** Tagged template: html`<p>${text}</p>` escapes `text`; nested html`` and arrays of them pass through. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

export interface PageOptions {
  /** The document language (BCP 47); default English. */
  lang?: string;
  /** A wide main column (dashboards: the security page, the console). */
  wide?: boolean;
  /** Links in the site header (after the brand). */
  nav?: SafeHtml;
  /** Extra stylesheets and scripts from /assets/ (module scripts; same origin only, per the CSP). */
  styles?: string[];
  scripts?: string[];
  /** The site footer; default: the one the app set with setPageChrome, if any. */
  footer?: SafeHtml;
}

/** Per-app page chrome (e.g. the dev footer), set once when the app is built. */
export interface PageChrome {
  footer?: SafeHtml;
}

declare module 'fastify' {
  interface FastifyInstance {
    floodgatePageChrome?: PageChrome;
  }
}

/** A whole document: the shell every hosted page shares. */
export function page(title: string, body: SafeHtml, opts: PageOptions = {}): string {
  return html`<!doctype html>
<html lang="${opts.lang ?? 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Floodgate</title>
<link rel="stylesheet" href="/assets/app.css">
${(opts.styles ?? []).map((href) => html`<link rel="stylesheet" href="${href}">\n`)}${(opts.scripts ?? []).map((src) => html`<script type="module" src="${src}"></script>\n`)}</head>
<body>
<header class="site"><span class="brand">Floodgate</span>${opts.nav ? html`<nav class="site" aria-label="Site">${opts.nav}</nav>` : ''}</header>
<main id="main"${opts.wide ? html` class="wide"` : ''}>
<h1>${title}</h1>
${body}
</main>
${opts.footer ? html`<footer class="site">${opts.footer}</footer>\n` : ''}</body>
</html>
`.value;
}

/** A message box; `alert` ones are announced by screen readers. */
export function notice(kind: 'info' | 'success' | 'error', text: SafeHtml | string): SafeHtml {
  return kind === 'error' ? html`<p class="notice error" role="alert">${text}</p>` : html`<p class="notice ${kind}" role="status">${text}</p>`;
}

/** Send a page as text/html with the given status (with the app's chrome, unless opts says otherwise). */
export function sendPage(reply: FastifyReply, status: number, title: string, body: SafeHtml, opts: PageOptions = {}): FastifyReply {
  const chrome = reply.server.floodgatePageChrome;
  const full: PageOptions = chrome?.footer && !('footer' in opts) ? { ...opts, footer: chrome.footer } : opts;
  return reply.code(status).type('text/html; charset=utf-8').send(page(title, body, full));
}
