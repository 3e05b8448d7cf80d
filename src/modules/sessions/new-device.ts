/**
 * The new-sign-in notice: a SignInObserver that mails the owner when an account is signed in to
 * from a device it has not seen, with a "this wasn't me" link. A device is new when the browser
 * presented no device cookie known for the account (devices.ts); the user agent only describes
 * it in the mail. Invariants:
 * - the notice, its token and the session commit in the sign-in's transaction (the observer runs
 *   inside it), so there is never a notice for a session that does not exist, nor the reverse;
 * - the token is `id.secret` from the CSPRNG; only sha256(secret) is stored; it is bound to that
 *   one session and that account, single use, and dies after 7 days;
 * - the raw token travels only sealed inside the queued mail (the outbox's `secret`), in a link
 *   built from publicUrl alone, never from the request;
 * - the notice records its cause (the signed-in user, request id, client address) and travels the
 *   priority lane by its type; the delivery gate folds it into the inbox past a few a day.
 */
import { DAY, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { mintToken } from '../../kernel/crypto.js';
import type { Db } from '../../storage/schema.js';
import type { Outbox } from '../notifications/index.js';
import type { SignInObserver } from './ports.js';

/** How long the "this wasn't me" link works. */
export const NOT_ME_TTL_MS = 7 * DAY;

/** Storage verbs over `signin_notices` (this module's table). */
export const signinNoticeStore = {
  async insert(db: Db, row: { id: string; user_id: string; session_id: string; secret_hash: string; created_at: number; expires_at: number }): Promise<void> {
    await db.insertInto('signin_notices').values(row).execute();
  },

  /** The token row, whatever its state (the caller checks secret and expiry). */
  async find(db: Db, id: string) {
    return db.selectFrom('signin_notices').selectAll().where('id', '=', id).executeTakeFirst();
  },

  /** Use a token: the DELETE is the check, so two concurrent uses cannot both succeed. */
  async consume(db: Db, id: string, now: number): Promise<boolean> {
    const r = await db.deleteFrom('signin_notices').where('id', '=', id).where('expires_at', '>', now).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  },

  /** Expired tokens of one account go when it gets a new one: bounded per account without a sweeper. */
  async pruneExpired(db: Db, userId: string, now: number): Promise<void> {
    await db.deleteFrom('signin_notices').where('user_id', '=', userId).where('expires_at', '<=', now).execute();
  },

  /** Every token of the account (its sessions are all ending). */
  async deleteAccount(db: Db, userId: string): Promise<void> {
    await db.deleteFrom('signin_notices').where('user_id', '=', userId).execute();
  },

  /** Whether the account had a session before this one (of any age or state). */
  async hadEarlierSession(db: Db, userId: string, sessionId: string): Promise<boolean> {
    const r = await db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('id', '!=', sessionId).limit(1).executeTakeFirst();
    return r !== undefined;
  },

  /** What the "this wasn't me" page shows about the session (read-only). */
  async sessionSummary(db: Db, sessionId: string) {
    return db.selectFrom('sessions').select(['device', 'ip', 'created_at', 'revoked_at']).where('id', '=', sessionId).executeTakeFirst();
  },
};

export interface NewDeviceNoticeDeps {
  clock: Clock;
  outbox: Outbox;
  /** config.publicUrl: the only origin written into the link. */
  publicUrl: string;
}

export class NewDeviceNotices implements SignInObserver {
  constructor(private readonly d: NewDeviceNoticeDeps) {}

  async signedIn(db: Db, userId: string, email: string, session: { id: string; device: string; newDevice: boolean }, ctx: RequestContext): Promise<void> {
    if (!session.newDevice) return;
    // An account's first sign-in has no earlier device to compare with: a notice would greet every
    // new account with an alarm and teach people to ignore this one.
    if (!(await signinNoticeStore.hadEarlierSession(db, userId, session.id))) return;
    const now = this.d.clock.now();
    const t = mintToken();
    await signinNoticeStore.pruneExpired(db, userId, now);
    await signinNoticeStore.insert(db, { id: t.id, user_id: userId, session_id: session.id, secret_hash: t.secretHash, created_at: now, expires_at: now + NOT_ME_TTL_MS });
    await this.d.outbox.enqueue(db, {
      type: 'new_signin',
      channel: 'email',
      userId,
      recipient: email,
      cause: { kind: 'user', userId, requestId: ctx.requestId, ip: ctx.ip },
      // The template shows the time to the minute and the client address as the approximate place.
      data: { device: session.device, at: new Date(now).toISOString(), ...(ctx.ip ? { ip: ctx.ip } : {}) },
      secret: { revokeLink: `${this.d.publicUrl.replace(/\/+$/, '')}/signin/not-me?token=${encodeURIComponent(t.token)}` },
      idempotencyKey: `new_signin:${session.id}`,
    });
  }

  /**
   * The right password with a wrong two-step code: the owner learns that their password is known,
   * at most once a day (a guesser who holds the password cannot turn this into an inbox bomb),
   * in the protective lane like the new-sign-in notice.
   */
  async secondFactorFailed(db: Db, userId: string, email: string, device: string, ctx: RequestContext): Promise<void> {
    const now = this.d.clock.now();
    await this.d.outbox.enqueue(db, {
      type: 'second_factor_failed',
      channel: 'email',
      userId,
      recipient: email,
      // Anonymous: the sender proved the password, not that they are the owner.
      cause: { kind: 'anonymous', requestId: ctx.requestId, ip: ctx.ip },
      data: { device, at: new Date(now).toISOString(), ...(ctx.ip ? { ip: ctx.ip } : {}) },
      idempotencyKey: `second_factor_failed:${userId}:${Math.floor(now / 86_400_000)}`,
    });
  }
}
