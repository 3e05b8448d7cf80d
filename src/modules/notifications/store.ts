/**
 * The courier's storage verbs over `outbox`, `outbox_attempts`, `dev_mailbox` and `inbox`.
 * Invariants:
 * - a row is claimed by one worker at a time: a single UPDATE ... WHERE id IN (SELECT ...) moves
 *   due rows to 'sending' with a lease (claimed_by, claimed_until); on PostgreSQL the inner
 *   SELECT takes FOR UPDATE SKIP LOCKED so concurrent workers take disjoint rows, on SQLite the
 *   database's single writer makes the statement atomic;
 * - a row in 'sending' whose lease has passed is due again (its worker died): nothing queued is
 *   lost, and a crash between send and record resends at most once per lease;
 * - every outcome is written only by the worker that holds the claim (claimed_by = me), together
 *   with its outbox_attempts row, in one transaction;
 * - the sealed secret is wiped (NULL) whenever a row reaches a final state: sent, failed, discarded.
 */
import { sql, type ExpressionBuilder, type Kysely, type Selectable } from 'kysely';
import { newId } from '../../kernel/ids.js';
import type { DialectName } from '../../storage/database.js';
import type { Database, Db, OutboxTable } from '../../storage/schema.js';
import type { Lane, MessageState } from './model.js';

export type OutboxRow = Selectable<OutboxTable>;

export interface ClaimOptions {
  now: number;
  worker: string;
  leaseMs: number;
}

function due(eb: ExpressionBuilder<Database, 'outbox'>, now: number) {
  return eb.or([
    eb.and([eb('state', '=', 'queued'), eb('next_attempt_at', '<=', now)]),
    eb.and([eb('state', '=', 'sending'), eb('claimed_until', '<', now)]),
  ]);
}

async function claimLane(db: Db, dialect: DialectName, lane: Lane, limit: number, o: ClaimOptions): Promise<OutboxRow[]> {
  if (limit <= 0) return [];
  const rows = await db
    .updateTable('outbox')
    .set((eb) => ({
      state: 'sending',
      claimed_by: o.worker,
      claimed_until: o.now + o.leaseMs,
      // Counted at claim time, so a row that kills its worker every time still reaches the dead letter.
      attempts: eb('attempts', '+', 1),
      updated_at: o.now,
    }))
    .where((eb) => {
      const pick = eb
        .selectFrom('outbox')
        .select('id')
        // An unknown lane is served as normal: a row nobody would ever claim would be lost quietly.
        .where((e) => (lane === 'normal' ? e('lane', 'not in', ['priority', 'bulk']) : e('lane', '=', lane)))
        .where((e) => due(e, o.now))
        .orderBy('next_attempt_at')
        .orderBy('id')
        .limit(limit);
      // PostgreSQL: `id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` may be rescanned per outer
      // row and, skipping the rows this very statement just locked, claim far more than n. An
      // ARRAY(...) sub-select is an init plan, evaluated exactly once.
      return dialect === 'postgres' ? sql<boolean>`${eb.ref('id')} = any(array(${pick.forUpdate().skipLocked()}))` : eb('id', 'in', pick);
    })
    .where((eb) => due(eb, o.now))
    .returningAll()
    .execute();
  return rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || (a.id < b.id ? -1 : 1));
}

/**
 * Claim one batch. The priority lane is claimed first and may fill the whole batch; the normal
 * lane still gets at least a quarter and the bulk lane a tenth, so no lane starves another and a
 * flood of normal rows can never delay a priority one.
 */
export async function claimBatch(db: Kysely<Database>, dialect: DialectName, batchSize: number, o: ClaimOptions): Promise<OutboxRow[]> {
  return db.transaction().execute(async (trx) => {
    const priority = await claimLane(trx, dialect, 'priority', batchSize, o);
    const normal = await claimLane(trx, dialect, 'normal', Math.max(batchSize - priority.length, Math.ceil(batchSize / 4)), o);
    const bulk = await claimLane(trx, dialect, 'bulk', Math.max(batchSize - priority.length - normal.length, Math.ceil(batchSize / 10)), o);
    return [...priority, ...normal, ...bulk];
  });
}

export interface Outcome {
  worker: string;
  now: number;
  durationMs: number;
  /** Recorded in outbox_attempts (and last_error); null for a success. */
  error: string | null;
  /** Whether this outcome was a delivery attempt (a gate hold or a lease release is not). */
  attempted: boolean;
}

type Patch = Partial<Omit<OutboxTable, 'id'>>;

async function finish(db: Kysely<Database>, id: string, o: Outcome, patch: Patch): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('outbox')
      .set({ ...patch, claimed_by: null, claimed_until: null, updated_at: o.now })
      .where('id', '=', id)
      .where('state', '=', 'sending')
      .where('claimed_by', '=', o.worker)
      .executeTakeFirst();
    if (o.attempted) {
      await trx
        .insertInto('outbox_attempts')
        .values({ id: newId(o.now), message_id: id, at: o.now, ok: o.error === null ? 1 : 0, error: o.error, duration_ms: Math.max(0, Math.round(o.durationMs)) })
        .execute();
    }
    return Number(r.numUpdatedRows) === 1;
  });
}

export const courierStore = {
  claimBatch,

  /** `via`: the channel it actually went through, when the gate rerouted it (shown in "mail we sent you"). */
  markSent(db: Kysely<Database>, id: string, o: Outcome, via?: string): Promise<boolean> {
    return finish(db, id, o, { state: 'sent', sent_at: o.now, sealed: null, last_error: null, held_reason: null, ...(via ? { channel: via } : {}) });
  },

  markRetry(db: Kysely<Database>, id: string, o: Outcome, nextAttemptAt: number): Promise<boolean> {
    return finish(db, id, o, { state: 'queued', next_attempt_at: nextAttemptAt, last_error: o.error });
  },

  /** Dead letter: visible with last_error; the secret is wiped, it will not be needed again. */
  markFailed(db: Kysely<Database>, id: string, o: Outcome): Promise<boolean> {
    return finish(db, id, o, { state: 'failed', last_error: o.error, sealed: null });
  },

  /** Held for an operator; the secret stays sealed so a release can still deliver it. */
  markHeld(db: Kysely<Database>, id: string, o: Outcome, reason: string, attempts: number): Promise<boolean> {
    return finish(db, id, o, { state: 'held', held_reason: reason.slice(0, 500), last_error: o.error, attempts });
  },

  /** Give a claimed row back untouched (its lease is running out before its turn came). */
  release(db: Kysely<Database>, id: string, o: Outcome, attempts: number): Promise<boolean> {
    return finish(db, id, o, { state: 'queued', attempts });
  },

  /** Rows per non-final state and the creation time of the oldest queued row (index scans only). */
  async depth(db: Db): Promise<{ byState: Record<string, number>; oldestQueuedAt: number | null }> {
    const counts = await db
      .selectFrom('outbox')
      .select(['state', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('state', 'in', ['queued', 'sending', 'held', 'failed'])
      .groupBy('state')
      .execute();
    const oldest = await db.selectFrom('outbox').select((eb) => eb.fn.min<number | null>('created_at').as('at')).where('state', '=', 'queued').executeTakeFirst();
    const byState: Record<string, number> = {};
    for (const c of counts) byState[c.state] = Number(c.n);
    return { byState, oldestQueuedAt: oldest?.at == null ? null : Number(oldest.at) };
  },

  /**
   * Operator verbs on held rows (the guard's breakers use them): back to the queue, due now, with
   * held_reason 'released:<reason>' until sent, so a gate can tell an operator already judged it...
   */
  async releaseHeld(db: Db, now: number, filter: HeldFilter): Promise<{ id: string; type: string; channel: string }[]> {
    let q = db
      .updateTable('outbox')
      .set({ state: 'queued', held_reason: sql<string>`'released:' || coalesce(held_reason, '')`, next_attempt_at: now, updated_at: now })
      .where('state', '=', 'held');
    if (filter.ids) q = q.where('id', 'in', filter.ids.length ? filter.ids : ['']);
    if (filter.type) q = q.where('type', '=', filter.type);
    if (filter.reason) q = q.where('held_reason', '=', filter.reason);
    return q.returning(['id', 'type', 'channel']).execute();
  },

  /** ...or discarded: final, and the sealed secret is wiped. */
  /** `note` (who and why) is kept as the row's last error. */
  async discardHeld(db: Db, now: number, filter: HeldFilter, note?: string): Promise<{ id: string; type: string; channel: string }[]> {
    let q = db.updateTable('outbox').set({ state: 'discarded', sealed: null, updated_at: now, ...(note ? { last_error: note.slice(0, 500) } : {}) }).where('state', '=', 'held');
    if (filter.ids) q = q.where('id', 'in', filter.ids.length ? filter.ids : ['']);
    if (filter.type) q = q.where('type', '=', filter.type);
    if (filter.reason) q = q.where('held_reason', '=', filter.reason);
    return q.returning(['id', 'type', 'channel']).execute();
  },

  /** Held rows by reason (what waits for an operator, and why). */
  async heldByReason(db: Db): Promise<Map<string, number>> {
    const rows = await db.selectFrom('outbox').select(['held_reason', (eb) => eb.fn.countAll<number>().as('n')]).where('state', '=', 'held').groupBy('held_reason').execute();
    return new Map(rows.map((r) => [r.held_reason ?? '', Number(r.n)]));
  },

  /** Rows whose idempotency key starts with `prefix` (e.g. one broadcast), by state. */
  async statesByKeyPrefix(db: Db, prefix: string): Promise<Record<string, number>> {
    const rows = await db.selectFrom('outbox').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).where('idempotency_key', 'like', `${prefix}%`).groupBy('state').execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  },

  /** The cause id recorded by rows whose idempotency key starts with `prefix`. */
  async causeOfKeyPrefix(db: Db, prefix: string): Promise<string | null> {
    const r = await db.selectFrom('outbox').select('cause_id').where('idempotency_key', 'like', `${prefix}%`).limit(1).executeTakeFirst();
    return r?.cause_id ?? null;
  },

  /** Messages created since `since`, by type and cause kind (incident evidence). */
  async countsByCauseSince(db: Db, since: number): Promise<{ type: string; causeKind: string; count: number }[]> {
    const rows = await db.selectFrom('outbox').select(['type', 'cause_kind', (eb) => eb.fn.countAll<number>().as('n')]).where('created_at', '>=', since).groupBy(['type', 'cause_kind']).execute();
    return rows.map((m) => ({ type: m.type, causeKind: m.cause_kind, count: Number(m.n) }));
  },
};

export interface HeldFilter {
  ids?: string[];
  type?: string;
  reason?: string;
}

export const NON_FINAL_STATES: readonly MessageState[] = ['queued', 'sending', 'held', 'failed'];
