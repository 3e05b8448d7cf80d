/**
 * Kysely access to the recovery module's tables (recovery_flows, recovery_accounts,
 * reset_intake). Dialect-agnostic except for the one `FOR UPDATE SKIP LOCKED` in the intake
 * claim, which only PostgreSQL has (SQLite serialises writers anyway).
 */
import type { DialectName } from '../../storage/database.js';
import type { Db, RecoveryFlowsTable, ResetIntakeTable } from '../../storage/schema.js';
import { type FlowState, type FlowStrategy, type RecoveryFlow } from './flow.js';

export type IntakeRow = ResetIntakeTable;

function toFlow(r: RecoveryFlowsTable): RecoveryFlow {
  return {
    id: r.id,
    userId: r.user_id,
    strategy: r.strategy as FlowStrategy,
    // An unknown value is kept as is: flow.ts refuses it loudly rather than guessing.
    state: r.state as FlowState,
    issuedAt: Number(r.issued_at),
    expiresAt: Number(r.expires_at),
    tokenId: r.token_id,
    tokenHash: r.token_hash,
    denyTokenId: r.deny_token_id,
    denyTokenHash: r.deny_token_hash,
    sendCount: Number(r.send_count),
    lastSentAt: r.last_sent_at === null ? null : Number(r.last_sent_at),
    otpFailures: Number(r.otp_failures),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    endReason: r.end_reason,
    requestId: r.request_id,
    requestIp: r.request_ip,
  };
}

function toRow(f: RecoveryFlow, now: number): RecoveryFlowsTable {
  return {
    id: f.id,
    user_id: f.userId,
    strategy: f.strategy,
    state: f.state,
    issued_at: f.issuedAt,
    expires_at: f.expiresAt,
    token_id: f.tokenId,
    token_hash: f.tokenHash,
    deny_token_id: f.denyTokenId,
    deny_token_hash: f.denyTokenHash,
    send_count: f.sendCount,
    last_sent_at: f.lastSentAt,
    otp_failures: f.otpFailures,
    ended_at: f.endedAt,
    end_reason: f.endReason,
    request_id: f.requestId,
    request_ip: f.requestIp,
    updated_at: now,
  };
}

export const recoveryStore = {
  async insertFlow(db: Db, flow: RecoveryFlow, now: number): Promise<void> {
    await db.insertInto('recovery_flows').values(toRow(flow, now)).execute();
  },

  async findByTokenId(db: Db, tokenId: string): Promise<RecoveryFlow | undefined> {
    const r = await db.selectFrom('recovery_flows').selectAll().where('token_id', '=', tokenId).executeTakeFirst();
    return r && toFlow(r);
  },

  async findByDenyTokenId(db: Db, denyTokenId: string): Promise<RecoveryFlow | undefined> {
    const r = await db.selectFrom('recovery_flows').selectAll().where('deny_token_id', '=', denyTokenId).executeTakeFirst();
    return r && toFlow(r);
  },

  async findById(db: Db, id: string): Promise<RecoveryFlow | undefined> {
    const r = await db.selectFrom('recovery_flows').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toFlow(r);
  },

  /** Flows still marked issued (some may be past expiry), newest first. */
  async issuedFlows(db: Db, userId: string): Promise<RecoveryFlow[]> {
    const rows = await db.selectFrom('recovery_flows').selectAll().where('user_id', '=', userId).where('state', '=', 'issued').orderBy('issued_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map(toFlow);
  },

  /** Mail sent to the account since `since`: how many, and the latest. */
  async sendsSince(db: Db, userId: string, since: number): Promise<{ count: number; last: number | null }> {
    const r = await db
      .selectFrom('recovery_flows')
      .select((eb) => [eb.fn.sum<number | string | null>('send_count').as('n'), eb.fn.max<number | string | null>('last_sent_at').as('last')])
      .where('user_id', '=', userId)
      .where('last_sent_at', '>', since)
      .executeTakeFirst();
    return { count: Number(r?.n ?? 0), last: r?.last === null || r?.last === undefined ? null : Number(r.last) };
  },

  /**
   * Write a transition, but only if the row is still in the state it was read in: the guarded
   * UPDATE is the compare-and-set that makes a token single use under concurrency.
   */
  async saveTransition(db: Db, before: RecoveryFlow, after: RecoveryFlow, now: number, extra: { notExpiredAt?: number } = {}): Promise<boolean> {
    let q = db
      .updateTable('recovery_flows')
      .set({ state: after.state, ended_at: after.endedAt, end_reason: after.endReason, otp_failures: after.otpFailures, updated_at: now })
      .where('id', '=', before.id)
      .where('state', '=', before.state);
    if (after.otpFailures !== before.otpFailures) q = q.where('otp_failures', '=', before.otpFailures);
    if (extra.notExpiredAt !== undefined) q = q.where('expires_at', '>', extra.notExpiredAt);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },

  /**
   * The per-account row, created if missing and touched: on PostgreSQL the upsert takes the row
   * lock, so two decisions for one account never interleave (each later statement in READ
   * COMMITTED sees what the other committed). SQLite has one writer at a time anyway.
   */
  async lockAccount(db: Db, userId: string, now: number): Promise<{ quietUntil: number | null }> {
    const r = await db
      .insertInto('recovery_accounts')
      .values({ user_id: userId, quiet_until: null, updated_at: now })
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ updated_at: now }))
      .returning('quiet_until')
      .executeTakeFirstOrThrow();
    return { quietUntil: r.quiet_until === null ? null : Number(r.quiet_until) };
  },

  async quietUntil(db: Db, userId: string, until: number, now: number): Promise<void> {
    const cur = await db.selectFrom('recovery_accounts').select('quiet_until').where('user_id', '=', userId).executeTakeFirst();
    const next = Math.max(until, cur?.quiet_until === null || cur?.quiet_until === undefined ? 0 : Number(cur.quiet_until));
    await db.updateTable('recovery_accounts').set({ quiet_until: next, updated_at: now }).where('user_id', '=', userId).execute();
  },

  // --- intake ------------------------------------------------------------------------------

  async insertIntake(db: Db, row: Omit<IntakeRow, 'claimed_by' | 'claimed_until' | 'attempts' | 'held'> & { held?: number }): Promise<void> {
    await db.insertInto('reset_intake').values({ held: 0, ...row, claimed_by: null, claimed_until: null, attempts: 0 }).execute();
  },

  /** Keep a claimed row for an operator (the guard holds the flow): it is not claimed again until released. */
  async holdIntake(db: Db, id: string, worker: string): Promise<boolean> {
    const r = await db.updateTable('reset_intake').set({ held: 1, claimed_by: null, claimed_until: null }).where('id', '=', id).where('claimed_by', '=', worker).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },
  async releaseHeldIntake(db: Db): Promise<number> {
    const r = await db.updateTable('reset_intake').set({ held: 2, claimed_by: null, claimed_until: null }).where('held', '=', 1).executeTakeFirst();
    return Number(r.numUpdatedRows);
  },
  async discardHeldIntake(db: Db): Promise<number> {
    const r = await db.deleteFrom('reset_intake').where('held', '=', 1).executeTakeFirst();
    return Number(r.numDeletedRows);
  },
  async heldIntakeCount(db: Db): Promise<number> {
    const r = await db.selectFrom('reset_intake').select((eb) => eb.fn.countAll<number | string>().as('n')).where('held', '=', 1).executeTakeFirst();
    return Number(r?.n ?? 0);
  },

  /**
   * Claim up to `limit` unclaimed (or abandoned) rows, oldest first, for `worker` until
   * `now + leaseMs`. On PostgreSQL concurrent workers skip each other's rows instead of waiting.
   * A worker also takes back rows it still holds itself: it decides one batch at a time, so a row
   * still claimed by it when the next batch starts is one whose decision failed (the database
   * went away mid-batch). It is retried on the next poll instead of waiting out the lease.
   */
  async claimIntake(db: Db, dialect: DialectName, worker: string, now: number, leaseMs: number, limit: number): Promise<IntakeRow[]> {
    const rows = await db
      .updateTable('reset_intake')
      .set((eb) => ({ claimed_by: worker, claimed_until: now + leaseMs, attempts: eb('attempts', '+', 1) }))
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('reset_intake')
          .select('id')
          .where((w) => w.or([w('claimed_until', 'is', null), w('claimed_until', '<=', now), w('claimed_by', '=', worker)]))
          .where('held', '!=', 1)
          .orderBy('id')
          .limit(limit)
          .$if(dialect === 'postgres', (qb) => qb.forUpdate().skipLocked()),
      )
      .returningAll()
      .execute();
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  },

  /** Finish a claimed row; false when the claim was lost (lease expired and someone else took it). */
  async deleteClaimedIntake(db: Db, id: string, worker: string): Promise<boolean> {
    const r = await db.deleteFrom('reset_intake').where('id', '=', id).where('claimed_by', '=', worker).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  },

  async releaseIntake(db: Db, id: string, worker: string): Promise<void> {
    await db.updateTable('reset_intake').set({ claimed_by: null, claimed_until: null }).where('id', '=', id).where('claimed_by', '=', worker).execute();
  },

  async intakeDepth(db: Db): Promise<number> {
    const r = await db.selectFrom('reset_intake').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst();
    return Number(r?.n ?? 0);
  },

  /** Delete flows and per-account rows that no rule looks at any more. */
  async prune(db: Db, flowsBefore: number, quietBefore: number): Promise<number> {
    const r = await db.deleteFrom('recovery_flows').where('issued_at', '<', flowsBefore).executeTakeFirst();
    await db
      .deleteFrom('recovery_accounts')
      .where('updated_at', '<', flowsBefore)
      .where((w) => w.or([w('quiet_until', 'is', null), w('quiet_until', '<', quietBefore)]))
      .execute();
    return Number(r.numDeletedRows);
  },
};
