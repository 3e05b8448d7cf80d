/**
 * HTTP for notifications: the signed-in user's in-app inbox, and (development only) the dev
 * mailbox pages and JSON. The dev mailbox shows token links, so it exists only when
 * config.devMailbox is true (default: no SMTP URL and NODE_ENV not production); its pages are
 * no-store, no-referrer, escaped, script-free, and make only links on publicUrl clickable.
 */
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { requireUser } from '../../http/auth.js';
import { noStore } from '../../http/context.js';
import { problems } from '../../http/schemas.js';
import { AppError } from '../../kernel/errors.js';
import type { Services } from '../../services.js';
import { devMailboxStore, type MailboxMessage } from './channels/dev-mailbox.js';
import { inboxStore } from './channels/inbox.js';
import { escapeHtml } from './templates.js';

const Notification = Type.Object({
  id: Type.String(),
  type: Type.String(),
  title: Type.String(),
  body: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.String(),
  readAt: Type.Union([Type.String(), Type.Null()]),
});

const Limit = Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1-100, default 50' }));
const limitOf = (raw: string | undefined, dflt = 50) => Math.min(100, Math.max(1, Number(raw ?? dflt)));

export async function notificationsRoutes(app: App, s: Services): Promise<void> {
  app.get('/api/v1/me/notifications', {
    schema: {
      tags: ['me'], summary: 'My in-app notifications, newest first, with the unread count', security: [{ session: [] }],
      querystring: Type.Object({ limit: Limit, before: Type.Optional(Type.String({ maxLength: 40, description: 'id cursor: entries older than this one' })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ notifications: Type.Array(Notification), unread: Type.Integer() }), ...problems(400, 401) },
    },
  }, async (req, reply) => {
    const p = await requireUser(s, req);
    reply.header('cache-control', 'no-store');
    const { items, unread } = await inboxStore.list(s.storage.db, p.userId, limitOf(req.query.limit), req.query.before);
    return { notifications: items, unread };
  });

  app.post('/api/v1/me/notifications/:id/read', {
    schema: {
      tags: ['me'], summary: 'Mark one of my notifications read', security: [{ session: [] }],
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
      response: { 204: Type.Null(), ...problems(401, 403, 404) },
    },
  }, async (req, reply) => {
    const p = await requireUser(s, req);
    if (!(await inboxStore.markRead(s.storage.db, p.userId, req.params.id, s.clock.now()))) throw new AppError('not_found', 'No notification of yours has this id.');
    return reply.code(204).send(null);
  });

  if (!s.config.devMailbox) return;

  const Message = Type.Object({ id: Type.String(), to: Type.String(), subject: Type.String(), text: Type.String(), html: Type.String(), createdAt: Type.String(), links: Type.Array(Type.String()) });
  const toJson = (m: MailboxMessage) => ({ id: m.id, to: m.to, subject: m.subject, text: m.text, html: m.html, createdAt: new Date(m.createdAt).toISOString(), links: linksIn(m.text, s.config.publicUrl) });

  app.get('/api/v1/dev/mailbox', {
    schema: {
      tags: ['dev'], summary: 'Development only: mail kept by the dev mailbox, newest first',
      description: 'Exists only when FLOODGATE_DEV_MAILBOX is on (default without SMTP outside production).',
      querystring: Type.Object({ to: Type.Optional(Type.String({ maxLength: 320 })), limit: Limit }, { additionalProperties: false }),
      response: { 200: Type.Object({ messages: Type.Array(Message) }), ...problems(400) },
    },
  }, async (req, reply) => {
    noStore(reply);
    const list = await devMailboxStore.list(s.storage.db, s.box, { limit: limitOf(req.query.limit), to: req.query.to });
    return { messages: list.map(toJson) };
  });

  app.get('/dev/mailbox', {
    schema: { hide: true, querystring: Type.Object({ to: Type.Optional(Type.String({ maxLength: 320 })) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    const list = await devMailboxStore.list(s.storage.db, s.box, { limit: 100, to: req.query.to });
    const rows = list.map((m) => `<tr><td>${escapeHtml(new Date(m.createdAt).toISOString().replace('T', ' ').slice(0, 19))}</td><td>${escapeHtml(m.to)}</td><td><a href="/dev/mailbox/${encodeURIComponent(m.id)}">${escapeHtml(m.subject)}</a></td></tr>`);
    const body = list.length
      ? `<table>\n<thead><tr><th>received (UTC)</th><th>to</th><th>subject</th></tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`
      : '<p>No mail yet.</p>';
    return reply.type('text/html; charset=utf-8').send(page('Dev mailbox', `<h1>Dev mailbox</h1>\n<p>Mail that Floodgate would have sent (newest first, last 100). Development only: set FLOODGATE_SMTP_URL to send real mail.</p>\n${body}`));
  });

  app.get('/dev/mailbox/:id', {
    schema: { hide: true, params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }) },
  }, async (req, reply) => {
    noStore(reply);
    const m = await devMailboxStore.get(s.storage.db, s.box, req.params.id);
    if (!m) throw new AppError('not_found', 'No message in the dev mailbox has this id.');
    return reply.type('text/html; charset=utf-8').send(page(m.subject, [
      '<p><a href="/dev/mailbox">&larr; all mail</a></p>',
      `<h1>${escapeHtml(m.subject)}</h1>`,
      `<dl><dt>To</dt><dd>${escapeHtml(m.to)}</dd><dt>Received</dt><dd>${escapeHtml(new Date(m.createdAt).toISOString())}</dd></dl>`,
      `<pre>${linkify(m.text, s.config.publicUrl)}</pre>`,
      `<details><summary>HTML part (source)</summary><pre>${escapeHtml(m.html)}</pre></details>`,
    ].join('\n')));
  });
}

const URL_RE = /https?:\/\/[^\s"'<>]+/g;

/** Links on our own origin in a text part. */
function linksIn(text: string, publicUrl: string): string[] {
  return [...new Set((text.match(URL_RE) ?? []).filter((u) => u.startsWith(publicUrl + '/')))];
}

/** Escape a text part and make only links on publicUrl clickable. */
function linkify(text: string, publicUrl: string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    out += escapeHtml(text.slice(last, m.index));
    const u = m[0];
    out += u.startsWith(publicUrl + '/') ? `<a href="${escapeHtml(u)}">${escapeHtml(u)}</a>` : escapeHtml(u);
    last = m.index + u.length;
  }
  return out + escapeHtml(text.slice(last));
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width">\n<meta name="robots" content="noindex">\n<title>${escapeHtml(title)}</title>\n</head>\n<body>\n${body}\n</body>\n</html>\n`;
}
