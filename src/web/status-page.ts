/**
 * The public status page (/status): the operators' notices, from the same query as
 * GET /api/v1/status. Operator text is shown as text (escaped, paragraphs only), never markup.
 */
import type { App } from '../http/app.js';
import { publicStatusNotices, RESOLVED_NOTICE_DAYS, type StatusNotice } from '../modules/guard/index.js';
import type { Services } from '../services.js';
import { when } from './format.js';
import { html, notice, sendPage, type SafeHtml } from './layout.js';

const SEVERITY: Record<string, string> = { info: 'Information', warning: 'Warning', critical: 'Critical' };

export function paragraphs(text: string): SafeHtml {
  return html`${text.split(/\r?\n\s*\r?\n/).map((p) => p.trim()).filter(Boolean).map((p) => html`<p>${p}</p>`)}`;
}

function noticeCard(n: StatusNotice): SafeHtml {
  return html`<article class="card status-notice ${n.resolvedAt ? 'resolved' : `sev-${n.severity}`}" aria-labelledby="n-${n.id}">
<h2 id="n-${n.id}">${n.title}</h2>
<p class="meta"><span class="badge ${n.resolvedAt ? 'ok' : n.severity === 'info' ? '' : 'warn'}">${n.resolvedAt ? 'Resolved' : (SEVERITY[n.severity] ?? n.severity)}</span>
Published <time datetime="${n.publishedAt}">${when(n.publishedAt)}</time>${n.resolvedAt ? html`, resolved <time datetime="${n.resolvedAt}">${when(n.resolvedAt)}</time>` : ''}</p>
${paragraphs(n.body)}
</article>`;
}

export async function statusPage(app: App, s: Services): Promise<void> {
  app.get('/status', {
    schema: { tags: ['pages'], summary: 'Page: service status (operator notices; same data as GET /api/v1/status)' },
  }, async (_req, reply) => {
    reply.header('cache-control', 'no-cache');
    const notices = await publicStatusNotices(s.storage.db, s.clock.now());
    const open = notices.filter((n) => !n.resolvedAt);
    const resolved = notices.filter((n) => n.resolvedAt);
    return sendPage(reply, 200, 'Service status', html`${open.length
      ? notice('error', `${open.length} ongoing ${open.length === 1 ? 'issue' : 'issues'}: see below.`)
      : notice('success', 'No known issues right now.')}
${open.map(noticeCard)}
${resolved.length ? html`<h2 class="section">Resolved in the last ${RESOLVED_NOTICE_DAYS} days</h2>${resolved.map(noticeCard)}` : ''}
<p class="hint">We never ask for your password by email. To check whether a security email really came from us, sign in and look at "Mail we sent you" on your <a href="/security#mail">security page</a>.</p>`, { wide: true });
  });
}
