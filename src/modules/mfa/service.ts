/**
 * MFA factors: TOTP enrolment, recovery codes, the SecondFactor port, and the rules every factor
 * change follows. Invariants:
 * - TOTP seeds rest only SecretBox-sealed (aad = row id); recovery codes only as salted SHA-256;
 * - a TOTP step and a recovery code are each accepted once, by a conditional UPDATE inside the
 *   caller's transaction (the write is the check, so two concurrent requests cannot both pass);
 * - wrong codes are limited per account (OTP_FAILURE_RULE) wherever codes are checked;
 * - adding or removing a factor needs a recent authentication (`requireRecentAuth`, the one
 *   definition), and commits with its security event and its `mfa_changed` notice;
 * - "MFA on" means an active TOTP or at least one passkey; recovery codes exist exactly while it is on.
 */
import type { Kysely } from 'kysely';
import QRCode from 'qrcode';
import type { Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import type { SecretBox } from '../../kernel/crypto.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Database, Db } from '../../storage/schema.js';
import type { AccountsService } from '../accounts/index.js';
import type { RateLimiter, LimitRule } from '../guard/index.js';
import type { SecurityEvents, SecurityEventType } from '../incidents/index.js';
import type { Outbox } from '../notifications/index.js';
import type { SecondFactor, SessionsService } from '../sessions/index.js';
import {
  OTP_FAILURE_RULE, REAUTH_FAILURE_RULE, RECENT_AUTH_MS, TOTP_PENDING_TTL_MS,
  type Actor, type MfaChange, type MfaStatus,
} from './model.js';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from './recovery-codes.js';
import { mfaStore } from './store.js';
import { matchTotpStep, newTotpSecret, normalizeTotpCode, totpUri } from './totp.js';

export interface MfaDeps {
  db: Kysely<Database>;
  clock: Clock;
  box: SecretBox;
  events: SecurityEvents;
  outbox: Outbox;
  limiter: RateLimiter;
  accounts: AccountsService;
  sessions: SessionsService;
}

export interface ChangeOptions {
  password?: string | undefined;
  revokeOtherSessions?: boolean | undefined;
}

export interface TotpEnrolment {
  secret: string;
  uri: string;
  qrSvg: string;
}

/**
 * Throws 429 when one more failure would pass `key`'s limit (without counting this request).
 * "One more would pass" rather than "count >= limit": the sliding count is fractional, and a
 * count stuck just under the limit would otherwise never block (the failing hit is refused).
 */
export async function refuseWhenLimited(limiter: RateLimiter, key: string, rule: LimitRule, what: string): Promise<void> {
  if ((await limiter.peek(key, rule)) + 1 <= rule.limit) return;
  const r = await limiter.hit(key, rule);
  const wait = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
  throw new AppError('rate_limited', `Too many wrong ${what}. Try again later.`, { headers: { 'retry-after': String(wait) } });
}

export class MfaService {
  /** The SecondFactor port for SignInFlow and the recovery flow. */
  readonly secondFactor: SecondFactor;

  constructor(private readonly d: MfaDeps) {
    this.secondFactor = {
      required: (userId) => this.enabled(this.d.db, userId),
      verify: (db, userId, otp, ctx) => this.verifyOtp(db, userId, otp, ctx),
    };
  }

  // --- the rules every change follows ---------------------------------------------------------

  /**
   * Recent authentication, defined once: the session was established within RECENT_AUTH_MS, or
   * the request carries the account's password. A password that is given must be right, even
   * on a fresh session; wrong ones are limited per account (a stolen session must not become a
   * password-guessing oracle).
   */
  async requireRecentAuth(actor: Actor, password: string | undefined, ctx: RequestContext): Promise<void> {
    if (password === undefined) {
      if (this.d.clock.now() - actor.sessionCreatedAt <= RECENT_AUTH_MS) return;
      throw new AppError('forbidden', 'This change needs a recent sign-in: repeat the request with your `password`.', { extra: { reason: 'reauthentication_required' } });
    }
    await this.confirmPassword(actor.userId, password, ctx);
  }

  /** The account's current password, checked at the same cost as sign-in and limited per account. */
  async confirmPassword(userId: string, password: string, ctx: RequestContext): Promise<void> {
    const key = `reauth:${userId}`;
    await refuseWhenLimited(this.d.limiter, key, REAUTH_FAILURE_RULE, 'passwords');
    const user = await this.d.accounts.findById(userId);
    if (!user) throw new AppError('unauthenticated');
    const { ok } = await this.d.accounts.verifyCredentials(user.email, password, ctx);
    if (!ok) {
      await this.d.limiter.hit(key, REAUTH_FAILURE_RULE);
      throw new AppError('forbidden', 'The password is incorrect.', { extra: { reason: 'wrong_password', errors: [{ field: 'password', message: 'The password is incorrect.' }] } });
    }
  }

  /** Security event + `mfa_changed` notice (+ optional revocation of other sessions), in `db`'s transaction. */
  async recordChange(db: Db, actor: Actor, email: string, change: MfaChange, event: SecurityEventType, ctx: RequestContext, opts: { revokeOtherSessions?: boolean | undefined; data?: Record<string, unknown> } = {}): Promise<number> {
    const now = this.d.clock.now();
    let revoked = 0;
    if (opts.revokeOtherSessions) revoked = await this.d.sessions.revokeAll(db, actor.userId, 'mfa_changed', actor.sessionId);
    await this.d.events.record(db, event, actor.userId, ctx, { ...opts.data, ...(opts.revokeOtherSessions ? { revokedSessions: revoked } : {}) });
    await this.notify(db, actor.userId, email, change, ctx, now);
    return revoked;
  }

  private async notify(db: Db, userId: string, email: string, change: MfaChange, ctx: RequestContext, now: number): Promise<void> {
    await this.d.outbox.enqueue(db, {
      type: 'mfa_changed', channel: 'email', userId, recipient: email,
      cause: { kind: 'user', userId, requestId: ctx.requestId, ip: ctx.ip },
      data: { change, at: new Date(now).toISOString() },
      idempotencyKey: `mfa_changed:${userId}:${ctx.requestId}:${change}`,
    });
  }

  /** Whether sign-in with a password must present a second factor. */
  async enabled(db: Db, userId: string): Promise<boolean> {
    return mfaStore.hasSecondFactor(db, userId);
  }

  async status(userId: string): Promise<MfaStatus> {
    const db = this.d.db;
    const totp = await mfaStore.totpOf(db, userId);
    const passkeys = await mfaStore.passkeyCount(db, userId);
    const active = totp?.state === 'active';
    return {
      enabled: active || passkeys > 0,
      totp: {
        enabled: active,
        pending: totp?.state === 'pending' && totp.created_at + TOTP_PENDING_TTL_MS > this.d.clock.now(),
        confirmedAt: active && totp.confirmed_at !== null ? new Date(Number(totp.confirmed_at)).toISOString() : null,
      },
      passkeys,
      recoveryCodesLeft: await mfaStore.recoveryCodesLeft(db, userId),
    };
  }

  private async userOf(userId: string) {
    const user = await this.d.accounts.findById(userId);
    if (!user) throw new AppError('unauthenticated');
    return user;
  }

  // --- recovery codes -------------------------------------------------------------------------

  /** A fresh set of 10 codes replacing any earlier one; returns the codes in clear, once. */
  async issueRecoveryCodes(db: Db, userId: string): Promise<string[]> {
    const codes = newRecoveryCodes();
    const hashes = codes.map((c) => hashRecoveryCode(userId, normalizeRecoveryCode(c)!));
    await mfaStore.replaceRecoveryCodes(db, userId, hashes, this.d.clock.now());
    return codes;
  }

  /** After a factor was removed: with no factor left MFA is off, and its recovery codes go too. */
  async afterFactorRemoved(db: Db, userId: string): Promise<boolean> {
    const still = await this.enabled(db, userId);
    if (!still) await mfaStore.deleteRecoveryCodes(db, userId);
    return still;
  }

  async regenerateRecoveryCodes(actor: Actor, opts: ChangeOptions, ctx: RequestContext): Promise<string[]> {
    await this.requireRecentAuth(actor, opts.password, ctx);
    const user = await this.userOf(actor.userId);
    return this.d.db.transaction().execute(async (trx) => {
      if (!(await this.enabled(trx, actor.userId))) throw new AppError('conflict', 'Turn on two-step verification first: recovery codes come with it.');
      const codes = await this.issueRecoveryCodes(trx, actor.userId);
      await this.recordChange(trx, actor, user.email, 'recovery_codes_regenerated', 'mfa.recovery_codes_regenerated', ctx, { revokeOtherSessions: opts.revokeOtherSessions });
      return codes;
    });
  }

  // --- TOTP -----------------------------------------------------------------------------------

  async startTotp(actor: Actor, opts: ChangeOptions, ctx: RequestContext): Promise<TotpEnrolment> {
    await this.requireRecentAuth(actor, opts.password, ctx);
    const user = await this.userOf(actor.userId);
    const existing = await mfaStore.totpOf(this.d.db, actor.userId);
    if (existing?.state === 'active') throw new AppError('conflict', 'An authenticator app is already set up; remove it first to set up another.');
    const now = this.d.clock.now();
    const secret = newTotpSecret();
    const id = newId(now);
    // The seed is sealed before it touches the database; aad binds the ciphertext to its row.
    await this.d.db.transaction().execute((trx) => mfaStore.putPendingTotp(trx, { id, user_id: actor.userId, secret_sealed: this.d.box.seal(secret, id), created_at: now }));
    const uri = totpUri(secret, user.email);
    const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    return { secret, uri, qrSvg };
  }

  async confirmTotp(actor: Actor, code: string, opts: ChangeOptions, ctx: RequestContext): Promise<string[]> {
    await this.requireRecentAuth(actor, opts.password, ctx);
    const otpKey = `otp:${actor.userId}`;
    await refuseWhenLimited(this.d.limiter, otpKey, OTP_FAILURE_RULE, 'codes');
    const user = await this.userOf(actor.userId);
    const now = this.d.clock.now();
    const row = await mfaStore.totpOf(this.d.db, actor.userId);
    if (row?.state === 'active') throw new AppError('conflict', 'The authenticator app is already confirmed.');
    if (!row || row.created_at + TOTP_PENDING_TTL_MS <= now) throw new AppError('invalid_token', 'No authenticator set-up is waiting (or it took longer than 15 minutes): start again.');
    const secret = this.openSeed(row.id, row.secret_sealed);
    const normalized = normalizeTotpCode(code);
    const step = normalized === null ? null : matchTotpStep(secret, normalized, now, null);
    if (step === null) {
      await this.d.limiter.hit(otpKey, OTP_FAILURE_RULE);
      throw new AppError('invalid_token', 'The code is incorrect. Check the time on your device and enter the current code.');
    }
    return this.d.db.transaction().execute(async (trx) => {
      if (!(await mfaStore.activateTotp(trx, row.id, now, step))) throw new AppError('conflict', 'This set-up was replaced or already confirmed.');
      const codes = await this.issueRecoveryCodes(trx, actor.userId);
      await this.recordChange(trx, actor, user.email, 'totp_enrolled', 'mfa.totp_enrolled', ctx, { revokeOtherSessions: opts.revokeOtherSessions });
      return codes;
    });
  }

  async removeTotp(actor: Actor, opts: ChangeOptions, ctx: RequestContext): Promise<void> {
    await this.requireRecentAuth(actor, opts.password, ctx);
    const user = await this.userOf(actor.userId);
    await this.d.db.transaction().execute(async (trx) => {
      const removed = await mfaStore.deleteTotp(trx, actor.userId, 'active');
      const pending = await mfaStore.deleteTotp(trx, actor.userId, 'pending');
      if (!removed) {
        if (pending) return; // an unfinished set-up is simply dropped: no factor changed
        throw new AppError('not_found', 'No authenticator app is set up.');
      }
      const still = await this.afterFactorRemoved(trx, actor.userId);
      await this.recordChange(trx, actor, user.email, 'totp_removed', 'mfa.totp_removed', ctx, { revokeOtherSessions: opts.revokeOtherSessions, data: { mfaStillOn: still } });
    });
  }

  private openSeed(id: string, sealed: string): string {
    const secret = this.d.box.open(sealed, id);
    // Only a changed FLOODGATE_SECRET_KEY or a tampered row gets here: a server fault, not the user's.
    if (secret === null) throw new AppError('unavailable', 'The authenticator secret cannot be read (was FLOODGATE_SECRET_KEY changed?).');
    return secret;
  }

  // --- the SecondFactor port ------------------------------------------------------------------

  /**
   * Verify a TOTP code or a recovery code for `userId`, inside the caller's transaction `db`
   * (only `db` is used for storage: the caller's transaction may hold SQLite's one connection).
   * Throws 429 once the account reached its wrong-code limit.
   */
  async verifyOtp(db: Db, userId: string, otp: string, ctx: RequestContext): Promise<'totp' | 'recovery_code' | null> {
    const key = `otp:${userId}`;
    await refuseWhenLimited(this.d.limiter, key, OTP_FAILURE_RULE, 'codes');
    const now = this.d.clock.now();
    const code = typeof otp === 'string' ? otp.slice(0, 64) : '';
    const totpCode = normalizeTotpCode(code);
    if (totpCode !== null) {
      const row = await mfaStore.totpOf(db, userId);
      if (row?.state === 'active') {
        const step = matchTotpStep(this.openSeed(row.id, row.secret_sealed), totpCode, now, row.last_used_step === null ? null : Number(row.last_used_step));
        if (step !== null && (await mfaStore.useTotpStep(db, row.id, step))) return 'totp';
      }
    } else {
      const rc = normalizeRecoveryCode(code);
      if (rc !== null && (await mfaStore.useRecoveryCode(db, userId, hashRecoveryCode(userId, rc), now))) {
        const left = await mfaStore.recoveryCodesLeft(db, userId);
        await this.d.events.record(db, 'mfa.recovery_code_used', userId, ctx, { left });
        // The accounts module reads users only through its own connection, which the caller's
        // transaction may hold (SQLite): read the address through `db` itself.
        const u = await db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst();
        if (u) await this.notify(db, userId, u.email, 'recovery_code_used', ctx, now);
        return 'recovery_code';
      }
    }
    await this.d.limiter.hit(key, OTP_FAILURE_RULE);
    return null;
  }
}
