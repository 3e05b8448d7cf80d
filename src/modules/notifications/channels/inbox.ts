/**
 * The in-app inbox: security notices shown in the account's dashboard (DESIGN: "Secondary
 * confirmation"). The recipient of an inbox row is a user id. Messages are rendered without
 * their secret part (a token never lands in the inbox table), and the entry's id is the outbox
 * row id, so a resend after a crash adds nothing.
 */
import type { Clock } from '../../../kernel/clock.js';
import type { Db } from '../../../storage/schema.js';
import { DeliveryError, type Channel, type DeliveryRow } from '../ports.js';
import type { Rendered } from '../templates.js';

export interface InboxEntry {
  id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  createdAt: string;
  readAt: string | null;
}

export class InboxChannel implements Channel {
  readonly name = 'inbox';
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async send(r: Rendered, row: DeliveryRow): Promise<void> {
    if (!row.recipient || row.recipient.length > 64) throw new DeliveryError('inbox: the recipient must be a user id', 'fail');
    await this.db
      .insertInto('inbox')
      .values({ id: row.id, user_id: row.recipient, type: row.type, title: r.subject, body: r.body, data: row.payload, created_at: this.clock.now(), read_at: null })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export const inboxStore = {
  /** Newest first (ids are time-ordered); `before` is an id cursor. */
  async list(db: Db, userId: string, limit: number, before?: string): Promise<{ items: InboxEntry[]; unread: number }> {
    let q = db.selectFrom('inbox').selectAll().where('user_id', '=', userId).orderBy('id', 'desc').limit(limit);
    if (before) q = q.where('id', '<', before);
    const rows = await q.execute();
    const unread = await db.selectFrom('inbox').select((eb) => eb.fn.countAll<number | string>().as('n')).where('user_id', '=', userId).where('read_at', 'is', null).executeTakeFirst();
    return {
      items: rows.map((r) => {
        let data: Record<string, unknown> = {};
        try {
          const v = JSON.parse(r.data) as unknown;
          if (v && typeof v === 'object' && !Array.isArray(v)) data = v as Record<string, unknown>;
        } catch { /* stored by us as JSON; an unreadable one shows as empty */ }
        return { id: r.id, type: r.type, title: r.title, body: r.body, data, createdAt: iso(r.created_at)!, readAt: iso(r.read_at) };
      }),
      unread: Number(unread?.n ?? 0),
    };
  },

  /**
   * Take one unread entry of the user's, of `type`, by marking it read, in the caller's
   * transaction: the guarded UPDATE is the check, so two concurrent takes cannot both succeed.
   * 'read' when the entry is theirs but was already read; 'none' when it is not theirs, not of
   * that type, or does not exist (one answer, so another account's ids tell nothing).
   */
  async takeUnread(db: Db, userId: string, id: string, type: string, now: number): Promise<'taken' | 'read' | 'none'> {
    const r = await db.updateTable('inbox').set({ read_at: now })
      .where('id', '=', id).where('user_id', '=', userId).where('type', '=', type).where('read_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) return 'taken';
    const own = await db.selectFrom('inbox').select('id').where('id', '=', id).where('user_id', '=', userId).where('type', '=', type).executeTakeFirst();
    return own ? 'read' : 'none';
  },

  /** Mark one of the user's entries read. false when it is not theirs (or does not exist). */
  async markRead(db: Db, userId: string, id: string, now: number): Promise<boolean> {
    const own = await db.selectFrom('inbox').select(['id', 'read_at']).where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    if (!own) return false;
    if (own.read_at === null) await db.updateTable('inbox').set({ read_at: now }).where('id', '=', id).where('user_id', '=', userId).where('read_at', 'is', null).execute();
    return true;
  },
};
