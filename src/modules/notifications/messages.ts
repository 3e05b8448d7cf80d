/**
 * "Mail we sent you": every security message Floodgate queued for an account in the last 90
 * days, so its owner can check whether a mail that looks like ours is ours (DESIGN: "Mail users
 * can trust"; phishers thrive on confusion during an incident). Invariants:
 * - only the caller's own rows (user_id), only the email and in-app channels (webhooks go to
 *   operators, not people);
 * - nothing secret leaves: the subject is rendered from the row's non-secret template data; where
 *   a template needs its secret part to render at all, a placeholder link on publicUrl stands in
 *   (the subject never contains a link), and the sealed column is never read;
 * - a row whose template cannot be rendered still shows up, under a generic subject.
 */
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { requireUser } from '../../http/auth.js';
import { noStore } from '../../http/context.js';
import { problems } from '../../http/schemas.js';
import type { Db } from '../../storage/schema.js';
import type { Services } from '../../services.js';
import { renderMessage } from './templates.js';

export const MESSAGES_WINDOW_DAYS = 90;
const MAX_MESSAGES = 200;

export interface SentMessage {
  id: string;
  type: string;
  channel: 'email' | 'inbox';
  /** queued | sending | sent | failed | held | discarded */
  state: string;
  subject: string;
  /** The address it went to (email channel only). */
  to: string | null;
  createdAt: string;
  sentAt: string | null;
}

/** Secret parts some templates need to render; never the real ones (those stay sealed). */
function placeholderSecret(type: string, publicUrl: string): Record<string, string> | null {
  const base = publicUrl.replace(/\/+$/, '');
  switch (type) {
    case 'verify_email':
      return { link: `${base}/verify?token=-` };
    case 'password_reset':
      return { resetLink: `${base}/reset?token=-`, denyLink: `${base}/reset/deny?token=-` };
    default:
      return null;
  }
}

const FALLBACK_SUBJECT = 'Security notice';

/** The subject a row was (or will be) sent with, rendered without its secret part. */
export function subjectOf(type: string, payload: string, publicUrl: string): string {
  try {
    return renderMessage(type, JSON.parse(payload) as unknown, placeholderSecret(type, publicUrl), { publicUrl }).subject;
  } catch {
    return FALLBACK_SUBJECT;
  }
}

/** The account's messages of the last 90 days, newest first (at most 200). */
export async function listSentMessages(db: Db, userId: string, now: number, publicUrl: string): Promise<SentMessage[]> {
  const since = now - MESSAGES_WINDOW_DAYS * 86_400_000;
  const rows = await db
    .selectFrom('outbox')
    .select(['id', 'type', 'channel', 'state', 'recipient', 'payload', 'created_at', 'sent_at'])
    .where('user_id', '=', userId)
    .where('created_at', '>=', since)
    .where('channel', 'in', ['email', 'inbox'])
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(MAX_MESSAGES)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    type: r.type,
    channel: r.channel as 'email' | 'inbox',
    state: r.state,
    subject: subjectOf(r.type, r.payload, publicUrl),
    to: r.channel === 'email' ? r.recipient : null,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    sentAt: r.sent_at === null ? null : new Date(Number(r.sent_at)).toISOString(),
  }));
}

const MessageSchema = Type.Object({
  id: Type.String(),
  type: Type.String(),
  channel: Type.Union([Type.Literal('email'), Type.Literal('inbox')]),
  state: Type.String({ description: 'queued, sending, sent, failed, held (kept back by a breaker or kill switch), discarded' }),
  subject: Type.String(),
  to: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  sentAt: Type.Union([Type.String(), Type.Null()]),
});

export async function messagesRoutes(app: App, s: Services): Promise<void> {
  app.get('/api/v1/me/messages', {
    schema: {
      tags: ['me'], summary: 'Security mail and in-app notices sent to me in the last 90 days',
      description: 'Newest first, at most 200: type, channel, delivery state, subject and times. Lets a person check whether a mail that looks like ours was really sent by us. Never includes links or tokens.',
      security: [{ session: [] }],
      response: { 200: Type.Object({ messages: Type.Array(MessageSchema), windowDays: Type.Integer() }), ...problems(401) },
    },
  }, async (req, reply) => {
    const p = await requireUser(s, req);
    noStore(reply);
    return { messages: await listSentMessages(s.storage.db, p.userId, s.clock.now(), s.config.publicUrl), windowDays: MESSAGES_WINDOW_DAYS };
  });
}
