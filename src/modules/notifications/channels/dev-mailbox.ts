/**
 * The dev mailbox: email kept in the database instead of sent, for development (default when
 * FLOODGATE_SMTP_URL is unset). Text and HTML are sealed with the SecretBox (aad = id), so even
 * here a token link never rests in clear. One entry per outbox row: a resend after a crash
 * finds the entry already there.
 */
import type { Clock } from '../../../kernel/clock.js';
import type { SecretBox } from '../../../kernel/crypto.js';
import type { Db } from '../../../storage/schema.js';
import type { Channel, DeliveryRow } from '../ports.js';
import type { Rendered } from '../templates.js';

export interface MailboxMessage {
  id: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  createdAt: number;
}

export class DevMailboxChannel implements Channel {
  readonly name = 'dev-mailbox';
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly clock: Clock,
  ) {}

  async send(r: Rendered, row: DeliveryRow): Promise<void> {
    await this.db
      .insertInto('dev_mailbox')
      .values({ id: row.id, recipient: row.recipient, subject: r.subject, text: this.box.seal(r.text, row.id), html: this.box.seal(r.html, row.id), created_at: this.clock.now() })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }
}

export const devMailboxStore = {
  /** Newest first; `to` filters by recipient (case-insensitive). */
  async list(db: Db, box: SecretBox, opts: { limit: number; to?: string | undefined }): Promise<MailboxMessage[]> {
    let q = db.selectFrom('dev_mailbox').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(opts.limit);
    if (opts.to) q = q.where((eb) => eb(eb.fn('lower', ['recipient']), '=', opts.to!.toLowerCase()));
    return (await q.execute()).map((r) => open(box, r));
  },

  async get(db: Db, box: SecretBox, id: string): Promise<MailboxMessage | null> {
    const r = await db.selectFrom('dev_mailbox').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? open(box, r) : null;
  },
};

function open(box: SecretBox, r: { id: string; recipient: string; subject: string; text: string; html: string; created_at: number }): MailboxMessage {
  const unreadable = '(sealed with another FLOODGATE_SECRET_KEY)';
  return { id: r.id, to: r.recipient, subject: r.subject, text: box.open(r.text, r.id) ?? unreadable, html: box.open(r.html, r.id) ?? unreadable, createdAt: Number(r.created_at) };
}
