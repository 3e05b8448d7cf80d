/**
 * Operator broadcasts: security notices to users (the channel for "you can ignore that email"
 * after an incident). Each recipient gets one outbox row keyed by broadcast and account, so a
 * repeated or resumed broadcast never mails anyone twice; the blast radius holds everything past
 * FLOODGATE_BLAST_RADIUS until operators approve. Invariants:
 * - approval is a two-person rule: with FLOODGATE_APPROVALS=1 the creator's own approval is
 *   refused while another operator exists (alone, they may); with 2, two different operators
 *   must approve (the creator may be one). Operators are identities: each live console grant and
 *   each live named token; the bootstrap token is not counted as "another operator" (it is the
 *   shared bootstrap credential) but may approve like any operator;
 * - one approval per operator per broadcast (the table's key), recorded and audited, refused
 *   attempts included; the broadcast row is locked while approvals are counted, so two
 *   concurrent approvals release it once;
 * - a broadcast's blast hold is released only here (OutboundGuard.release refuses it).
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { BroadcastsTable, Database } from '../../storage/schema.js';
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
  /** Who approved so far, oldest first. */
  approvals: { by: string; at: string }[];
  /** Approvals that release it (FLOODGATE_APPROVALS). */
  approvalsNeeded: number;
  sent: number;
  held: number;
  queued: number;
}

export interface BroadcastDeps {
  db: Kysely<Database>;
  clock: Clock;
  outbox: Outbox;
  accounts: AccountsService;
  audit: AuditLog;
  outbound: OutboundGuard;
  blastRadius: number;
  /** FLOODGATE_APPROVALS: approvals needed to release a held broadcast. */
  approvals: 1 | 2;
  /** Ids of the operators that exist now: live console grants (`user:<id>`) and live named tokens (never the bootstrap token). */
  operatorIds(): Promise<string[]>;
}

export class Broadcasts {
  constructor(private readonly d: BroadcastDeps) {}

  async create(op: Operator, input: { subject: string; text: string; audience: Audience }, reason = 'broadcast'): Promise<BroadcastView> {
    const now = this.d.clock.now();
    const id = newId(now);
    const cause = { kind: 'operator' as const, operatorId: op.id, actionId: `broadcast:${id}` };
    await this.d.db.transaction().execute(async (trx) => {
      await trx.insertInto('broadcasts').values({ id, subject: input.subject, text: input.text, audience: JSON.stringify(input.audience === 'all' ? 'all' : { count: input.audience.emails.length }), state: 'created', recipients: 0, created_by: op.name, created_by_id: op.id, created_at: now, approved_by: null, approved_at: null }).execute();
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

  /**
   * One operator's approval of a broadcast the blast radius holds. Releases the held recipients
   * once the approval rule is met (FLOODGATE_APPROVALS); otherwise records the approval and
   * waits for another operator. Throws not_found; forbidden (the creator alone while another
   * operator exists, FLOODGATE_APPROVALS=1); conflict (not awaiting approval, or this operator
   * already approved). Every approval, and every refused one, is audited.
   */
  async approve(id: string, op: Operator, reason: string): Promise<BroadcastView> {
    const b = await this.d.db.selectFrom('broadcasts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!b) throw new AppError('not_found', 'No broadcast has this id.');
    const notAwaiting = () => new AppError('conflict', 'This broadcast is not waiting for an approval.', { extra: { reason: 'not_awaiting_approval' } });
    if (b.state !== 'awaiting_approval') throw notAwaiting();
    const causeId = await courierStore.causeOfKeyPrefix(this.d.db, `broadcast:${id}:`);
    const creator = creatorOf(b, causeId);
    const isCreator = creator === op.id || (creator === null && b.created_by === op.name);
    // Who else could approve: any other live operator (console grants, named tokens; not the bootstrap
    // token, a shared credential usually held by one of them, so a lone operator is not blocked by it).
    const others = (await this.d.operatorIds()).filter((x) => x !== creator);
    if (this.d.approvals === 1 && isCreator && others.length > 0) {
      await this.d.audit.record(this.d.db, op, 'broadcast.approve_refused', id, reason, { why: 'creator', otherOperators: others.length });
      throw new AppError('forbidden',
        'You created this broadcast: another operator must approve it (the two-person rule; FLOODGATE_APPROVALS). Ask one of them to approve it, or discard it.',
        { extra: { reason: 'second_operator_required' } });
    }
    const now = this.d.clock.now();
    const outcome = await this.d.db.transaction().execute(async (trx) => {
      // Takes the row lock (PostgreSQL) and re-checks the state: concurrent approvals count one after the other.
      const locked = await trx.updateTable('broadcasts').set({ state: 'awaiting_approval' })
        .where('id', '=', id).where('state', '=', 'awaiting_approval').executeTakeFirst();
      if (Number(locked.numUpdatedRows) !== 1) return 'gone' as const;
      const added = await trx.insertInto('broadcast_approvals').values({ broadcast_id: id, operator_id: op.id, operator_name: op.name, approved_at: now })
        .onConflict((oc) => oc.columns(['broadcast_id', 'operator_id']).doNothing()).executeTakeFirst();
      if (Number(added.numInsertedOrUpdatedRows ?? 0n) !== 1) return 'again' as const;
      const approvals = await trx.selectFrom('broadcast_approvals').select(['operator_id', 'operator_name'])
        .where('broadcast_id', '=', id).orderBy('approved_at').orderBy('operator_id').execute();
      const release = approvals.length >= this.d.approvals;
      await this.d.audit.record(trx, op, 'broadcast.approve', id, reason, {
        approvals: approvals.length, needed: this.d.approvals, creator: isCreator, ...(isCreator && others.length === 0 ? { alone: true } : {}), released: release,
      });
      if (!release) return 'recorded' as const;
      const by = approvals.map((a) => a.operator_name).join(', ');
      await trx.updateTable('broadcasts').set({ state: 'approved', approved_by: by, approved_at: now }).where('id', '=', id).execute();
      if (causeId) await this.d.outbound.releaseApprovedBlast(trx, causeId, op, reason);
      return 'released' as const;
    });
    if (outcome === 'gone') throw notAwaiting();
    if (outcome === 'again') {
      throw new AppError('conflict', 'You already approved this broadcast: another operator must approve it too.', { extra: { reason: 'already_approved' } });
    }
    return (await this.get(id))!;
  }

  async get(id: string): Promise<BroadcastView | null> {
    const b = await this.d.db.selectFrom('broadcasts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!b) return null;
    const counts = await courierStore.statesByKeyPrefix(this.d.db, `broadcast:${id}:`);
    const c = (s: string) => counts[s] ?? 0;
    const approvals = await this.d.db.selectFrom('broadcast_approvals').select(['operator_name', 'approved_at'])
      .where('broadcast_id', '=', id).orderBy('approved_at').orderBy('operator_id').execute();
    return {
      id: b.id, subject: b.subject, state: b.state, recipients: b.recipients, createdBy: b.created_by, createdAt: new Date(Number(b.created_at)).toISOString(),
      approvedBy: b.approved_by, approvedAt: b.approved_at === null ? null : new Date(Number(b.approved_at)).toISOString(),
      approvals: approvals.map((a) => ({ by: a.operator_name, at: new Date(Number(a.approved_at)).toISOString() })), approvalsNeeded: this.d.approvals,
      sent: c('sent'), held: c('held'), queued: c('queued') + c('sending'),
    };
  }

  async list(limit = 50): Promise<BroadcastView[]> {
    const rows = await this.d.db.selectFrom('broadcasts').select('id').orderBy('id', 'desc').limit(limit).execute();
    return (await Promise.all(rows.map((r) => this.get(r.id)))).filter((b): b is BroadcastView => b !== null);
  }
}

/** The creating operator's id: recorded since migration 0009, else read from the cause of its mail (`<operator id>:broadcast:<id>`). */
function creatorOf(b: BroadcastsTable, causeId: string | null): string | null {
  if (b.created_by_id) return b.created_by_id;
  const suffix = `:broadcast:${b.id}`;
  return causeId?.endsWith(suffix) ? causeId.slice(0, -suffix.length) : null;
}
