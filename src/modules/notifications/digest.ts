/**
 * Folded notices and their daily digest (DESIGN: "Priority lanes": past a few per account per day,
 * protective notices fold into the in-app inbox and one digest). The delivery gate decides a fold
 * and writes it down here (`noticeFolds.record`); the courier delivers the notice to the inbox;
 * once the day is over, this worker queues one `digest` email per account listing them.
 * Invariants:
 * - a folded notice still reaches the person: in the inbox at once, and in the digest the day after;
 * - at most one digest per account per UTC day: its idempotency key is `digest:<user>:<day>`, and
 *   the folds it lists are marked with its id in the same transaction, so concurrent workers or a
 *   crash between the two writes can neither send two nor lose one;
 * - the digest records its cause (a job, `digest:<day>`), so the blast radius holds the rest of a
 *   day's digests for an operator if a bug folds notices for more accounts than it allows;
 * - nothing secret: items are subjects rendered from the rows' non-secret data, and times.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { DAY, MINUTE, type Clock } from '../../kernel/clock.js';
import type { Database, Db } from '../../storage/schema.js';
import { Poller } from '../../kernel/poller.js';
import type { BackgroundWorker } from '../../services.js';
import { subjectOf } from './messages.js';
import type { Outbox } from './outbox.js';

/** The UTC date of an instant, YYYY-MM-DD: the "day" of folds and digests. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Folds older than this are deleted (listed or not: by then the inbox is where they are). */
export const FOLD_RETENTION_DAYS = 30;
/** Items listed in one digest; the rest are summed up in a last line. */
export const DIGEST_MAX_ITEMS = 50;

/** Storage verbs over `notice_folds` (this module's table). */
export const noticeFolds = {
  /** The gate folded this row into the inbox. Idempotent (a retried row is recorded once). */
  async record(db: Db, f: { outboxId: string; userId: string; type: string; day: string; at: number }): Promise<void> {
    await db
      .insertInto('notice_folds')
      .values({ outbox_id: f.outboxId, user_id: f.userId, type: f.type, day: f.day, folded_at: f.at, digest_id: null })
      .onConflict((oc) => oc.column('outbox_id').doNothing())
      .execute();
  },

  /** Accounts and days (before `beforeDay`) with folds not listed in a digest yet. */
  async pending(db: Db, beforeDay: string, limit: number): Promise<{ user_id: string; day: string }[]> {
    return db.selectFrom('notice_folds').select(['user_id', 'day']).distinct()
      .where('day', '<', beforeDay).where('digest_id', 'is', null)
      .orderBy('day').orderBy('user_id').limit(limit).execute();
  },

  /** The unlisted folds of one account and day, oldest first, with what the digest shows of each. */
  async unlisted(db: Db, userId: string, day: string) {
    return db.selectFrom('notice_folds')
      .innerJoin('outbox', 'outbox.id', 'notice_folds.outbox_id')
      .select(['notice_folds.outbox_id as id', 'outbox.type as type', 'outbox.payload as payload', 'outbox.created_at as created_at'])
      .where('notice_folds.user_id', '=', userId).where('notice_folds.day', '=', day).where('notice_folds.digest_id', 'is', null)
      .orderBy('notice_folds.outbox_id').execute();
  },

  async markListed(db: Db, userId: string, day: string, digestId: string): Promise<void> {
    await db.updateTable('notice_folds').set({ digest_id: digestId }).where('user_id', '=', userId).where('day', '=', day).where('digest_id', 'is', null).execute();
  },

  /** Folds of the account and day that the digest listed (or that were skipped: 'none'). */
  async ofDay(db: Db, userId: string, day: string) {
    return db.selectFrom('notice_folds').selectAll().where('user_id', '=', userId).where('day', '=', day).orderBy('outbox_id').execute();
  },

  async prune(db: Db, beforeDay: string): Promise<number> {
    const r = await db.deleteFrom('notice_folds').where('day', '<', beforeDay).executeTakeFirst();
    return Number(r.numDeletedRows);
  },
};

export interface DigestDeps {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  outbox: Outbox;
  publicUrl: string;
  /** The account's current email address, or null when the account is gone (accounts module). */
  emailOf(userId: string): Promise<string | null>;
  /** Idle period between runs (default 10 minutes). */
  pollMs?: number;
  /** Accounts handled per run (default 500; a run with a full batch runs again at once). */
  batch?: number;
}

export interface DigestReport {
  /** Account-days looked at. */
  accounts: number;
  /** Digests queued (a duplicate of one already queued is not counted). */
  queued: number;
  /** Account-days skipped because the account no longer exists. */
  skipped: number;
}

export class DigestWorker implements BackgroundWorker {
  readonly name = 'notice-digest';
  private readonly poller: Poller;
  private readonly batch: number;

  constructor(private readonly d: DigestDeps) {
    this.batch = d.batch ?? 500;
    this.poller = new Poller(async () => (await this.runOnce()).accounts >= this.batch, {
      pollMs: d.pollMs ?? 10 * MINUTE,
      onError: (e) => this.d.logger.error({ err: e, worker: this.name }, 'notice digest run failed; will retry'),
    });
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  /** Queue the digests of every finished day not digested yet. Tests call this directly. */
  async runOnce(): Promise<DigestReport> {
    const now = this.d.clock.now();
    const today = utcDay(now);
    const pending = await noticeFolds.pending(this.d.db, today, this.batch);
    const report: DigestReport = { accounts: pending.length, queued: 0, skipped: 0 };
    for (const { user_id: userId, day } of pending) {
      // Read before the transaction: SQLite has one connection, which the transaction holds.
      const email = await this.d.emailOf(userId);
      await this.d.db.transaction().execute(async (trx) => {
        const rows = await noticeFolds.unlisted(trx, userId, day);
        if (!rows.length) return;
        if (!email) {
          await noticeFolds.markListed(trx, userId, day, 'none');
          report.skipped++;
          return;
        }
        const items = rows.map((r) => ({ subject: subjectOf(r.type, r.payload, this.d.publicUrl), at: new Date(Number(r.created_at)).toISOString() }));
        const listed = items.length <= DIGEST_MAX_ITEMS
          ? items
          : [...items.slice(0, DIGEST_MAX_ITEMS - 1), { subject: `…and ${items.length - DIGEST_MAX_ITEMS + 1} more (all of them are in your account's notifications)`, at: items.at(-1)!.at }];
        const r = await this.d.outbox.enqueue(trx, {
          type: 'digest', channel: 'email', userId, recipient: email,
          cause: { kind: 'job', jobId: `digest:${day}` },
          data: { items: listed, day },
          idempotencyKey: `digest:${userId}:${day}`,
        });
        await noticeFolds.markListed(trx, userId, day, r.id);
        if (!r.duplicate) report.queued++;
      });
    }
    await noticeFolds.prune(this.d.db, utcDay(now - FOLD_RETENTION_DAYS * DAY));
    return report;
  }
}
