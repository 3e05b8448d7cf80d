/**
 * Operator broadcasts: security notices to users (the channel for "you can ignore that email"
 * after an incident). Each recipient gets one outbox row keyed by broadcast and account, so a
 * repeated or resumed broadcast never mails anyone twice; the blast radius holds everything past
 * FLOODGATE_BLAST_RADIUS until an operator approves.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Database } from '../../storage/schema.js';
import type { AccountsService } from '../accounts/index.js';
import type { AuditLog } from '../incidents/index.js';
import { courierStore, type Outbox } from '../notifications/index.js';
import type { Operator, OutboundGuard } from './outbound.js';

export type Audience = 'all' | { emails: string[] };

export interface BroadcastView {
  id: string;
  subject: string;
  state: string;
  recipients: number;
  createdBy: string;
  createdAt: string;
  approvedBy: string | null;
  approvedAt: string | null;
  sent: number;
  held: number;
  queued: number;
}

export class Broadcasts {
  constructor(
    private readonly d: { db: Kysely<Database>; clock: Clock; outbox: Outbox; accounts: AccountsService; audit: AuditLog; outbound: OutboundGuard; blastRadius: number },
  ) {}

  async create(op: Operator, input: { subject: string; text: string; audience: Audience }, reason = 'broadcast'): Promise<BroadcastView> {
    const now = this.d.clock.now();
    const id = newId(now);
    const cause = { kind: 'operator' as const, operatorId: op.id, actionId: `broadcast:${id}` };
    await this.d.db.transaction().execute(async (trx) => {
      await trx.insertInto('broadcasts').values({ id, subject: input.subject, text: input.text, audience: JSON.stringify(input.audience === 'all' ? 'all' : { count: input.audience.emails.length }), state: 'created', recipients: 0, created_by: op.name, created_at: now, approved_by: null, approved_at: null }).execute();
      await this.d.audit.record(trx, op, 'broadcast.create', id, reason, { subject: input.subject });
    });
    let recipients = 0;
    const pages = input.audience === 'all' ? this.d.accounts.allAccounts(500) : (async function* (acc: AccountsService, emails: string[]) { yield await acc.accountsByEmails(emails); })(this.d.accounts, input.audience.emails);
    for await (const page of pages) {
      await this.d.db.transaction().execute(async (trx) => {
        for (const u of page) {
          const r = await this.d.outbox.enqueue(trx, { type: 'broadcast', channel: 'email', userId: u.id, recipient: u.email, cause, data: { subject: input.subject, text: input.text }, idempotencyKey: `broadcast:${id}:${u.id}` });
          if (!r.duplicate) recipients++;
        }
      });
    }
    await this.d.db.updateTable('broadcasts').set({ state: recipients > this.d.blastRadius ? 'awaiting_approval' : 'sending', recipients }).where('id', '=', id).execute();
    return (await this.get(id))!;
  }

  async approve(id: string, op: Operator, reason: string): Promise<BroadcastView> {
    const b = await this.d.db.selectFrom('broadcasts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!b) throw new AppError('not_found', 'No broadcast has this id.');
    const now = this.d.clock.now();
    await this.d.db.updateTable('broadcasts').set({ state: 'approved', approved_by: op.name, approved_at: now }).where('id', '=', id).execute();
    // A broadcast's cause id is `<creator id>:broadcast:<id>`: approve that exact cause.
    const causeId = await courierStore.causeOfKeyPrefix(this.d.db, `broadcast:${id}:`);
    if (causeId) await this.d.outbound.release(`blast:${causeId}`, op, reason);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<BroadcastView | null> {
    const b = await this.d.db.selectFrom('broadcasts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!b) return null;
    const counts = await courierStore.statesByKeyPrefix(this.d.db, `broadcast:${id}:`);
    const c = (s: string) => counts[s] ?? 0;
    return {
      id: b.id, subject: b.subject, state: b.state, recipients: b.recipients, createdBy: b.created_by, createdAt: new Date(Number(b.created_at)).toISOString(),
      approvedBy: b.approved_by, approvedAt: b.approved_at === null ? null : new Date(Number(b.approved_at)).toISOString(), sent: c('sent'), held: c('held'), queued: c('queued') + c('sending'),
    };
  }

  async list(limit = 50): Promise<BroadcastView[]> {
    const rows = await this.d.db.selectFrom('broadcasts').select('id').orderBy('id', 'desc').limit(limit).execute();
    return (await Promise.all(rows.map((r) => this.get(r.id)))).filter((b): b is BroadcastView => b !== null);
  }
}
