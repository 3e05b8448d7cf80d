/**
 * The sign-in flow: throttle -> credentials -> confirmed address -> lock -> place -> second factor
 * -> session. `authenticate` is the one rule for every password sign-in (POST /api/v1/sessions,
 * /login, /console/login); `completeSignIn` the one ending for every sign-in (password, passkey).
 * Invariants:
 * - any wrong credential (unknown email, wrong password, locked account, an address never
 *   confirmed, an account that may not sign in where it tried, such as the console without the
 *   grant) is one generic 401, after the same password work, counted by the throttle and recorded
 *   as `signin.failed`; `mfa_required` is answered only after all of those passed;
 * - an account whose address was never confirmed gets no session, whatever proves it: a squatter
 *   who signed up with someone else's address can add no factor and act for nobody. The right
 *   password answers exactly like a wrong one and (re)sends the confirmation mail under the
 *   resend rules (reuse, don't re-mail);
 * - throttling is checked before any password work and keyed so it reveals nothing; a device
 *   cookie known for the account (with budget left) is not held back by strangers' failures,
 *   nor by the lock they caused;
 * - the session, its security event, its device cookie row and its notices commit in one
 *   transaction.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { normalizeEmail } from '../../kernel/email.js';
import { AppError } from '../../kernel/errors.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { Database, Db } from '../../storage/schema.js';
import type { AccountsService, UserRow } from '../accounts/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import { describeDevice } from './device.js';
import type { DeviceCookies } from './devices.js';
import type { SecondFactor, SignInObserver, SignInThrottle, ThrottleOptions } from './ports.js';
import type { SessionsService } from './service.js';

export interface SignInDeps {
  db: Kysely<Database>;
  clock: Clock;
  accounts: AccountsService;
  sessions: SessionsService;
  events: SecurityEvents;
  metrics: Metrics;
  throttle: SignInThrottle;
  secondFactor: SecondFactor;
  observers: SignInObserver[];
  devices: DeviceCookies;
}

export interface SignInResult {
  token: string;
  sessionId: string;
  expiresAt: number;
  userId: string;
  /** The device cookie's new value (set it on the answer). */
  device: string;
}

/** Where a password sign-in happens, when not the account's own sign-in. */
export interface SignInPlace {
  /** Recorded with failures. */
  where?: 'console';
  /**
   * Whether the account may sign in here (the console: the grant); no is answered as a wrong
   * password. Asked on every attempt, for an unknown address (null) and a wrong password too, so
   * its query does not time which passwords were right.
   */
  admit?: (user: UserRow | null) => Promise<boolean>;
}

export interface Authenticated {
  user: UserRow;
  /** `password`, or `password+totp` / `password+recovery_code` when a second factor was asked. */
  method: string;
}

type FailReason = 'password' | 'unverified' | 'locked' | 'no_access' | 'second_factor';

export class SignInFlow {
  constructor(private readonly d: SignInDeps) {}

  invalid(): AppError {
    return new AppError('invalid_credentials', 'The email or password is incorrect.');
  }

  /**
   * Check a password sign-in, whole: throttle, credentials, confirmed address, lock, `place`'s own
   * rule, second factor; failures are counted, locked out and recorded here. Opens no session.
   * Throws invalid_credentials, mfa_required (only after everything but the code passed) or
   * rate_limited.
   */
  async authenticate(input: { email: string; password: string; otp?: string | undefined }, ctx: RequestContext, place: SignInPlace = {}): Promise<Authenticated> {
    const key = normalizeEmail(input.email).slice(0, 320);
    // Read before any password work, the same query for every address: the last password change
    // keys the account's failure count, and a device cookie proves something only for its account.
    const named = await this.d.accounts.findByEmail(input.email);
    // Asked whenever a cookie came, for an unknown address too: the query is the same either way.
    const known = ctx.device ? await this.d.devices.known(this.d.db, ctx.device, named?.id ?? '') : null;
    const device = known && (await this.d.throttle.deviceTrusted(known)) ? known : null;
    const opts: ThrottleOptions = { since: named ? Number(named.password_changed_at ?? 0) : 0, device };
    const wait = await this.d.throttle.check(key, ctx, opts);
    if (wait !== null) {
      this.d.metrics.signIns.inc({ outcome: 'throttled' });
      throw new AppError('rate_limited', 'Too many sign-in attempts. Try again later.', { headers: { 'retry-after': String(Math.max(1, Math.ceil(wait))) } });
    }
    const { user, ok } = await this.d.accounts.verifyCredentials(input.email, input.password, ctx);
    const admitted = place.admit ? await place.admit(user) : true;
    const reason: FailReason | null = !user || !ok ? 'password'
      : user.email_verified_at === null ? 'unverified'
      // The lock stops strangers' guessing; a browser the owner already signed in from is not a stranger.
      : user.locked_at !== null && !device ? 'locked'
      : !admitted ? 'no_access'
      : null;
    if (reason) {
      await this.failed(key, user, reason, ctx, opts, place);
      // Only whoever knows the password gets here, and the resend rules decide whether it mails.
      if (reason === 'unverified') await this.d.accounts.resendVerificationTo(user!, ctx);
      throw this.invalid();
    }
    const account = user!;
    let method = 'password';
    if (await this.d.secondFactor.required(account.id)) {
      if (!input.otp) {
        this.d.metrics.signIns.inc({ outcome: 'mfa_required' });
        throw new AppError('mfa_required', 'This account uses two-step verification: repeat the request with `otp` (a code from your authenticator app or a recovery code), or sign in with a passkey.');
      }
      const used = await this.d.db.transaction().execute((trx) => this.d.secondFactor.verify(trx, account.id, input.otp!, ctx));
      if (!used) {
        // Wrong codes count like wrong passwords, towards the same delays and lock.
        await this.failed(key, account, 'second_factor', ctx, opts, place);
        // The password was right: tell the owner it is known (OWASP Credential Stuffing cheat sheet).
        for (const o of this.d.observers) await o.secondFactorFailed?.(this.d.db, account.id, account.email, describeDevice(ctx.userAgent), ctx);
        throw new AppError('invalid_credentials', 'The code is incorrect or was already used.');
      }
      method = `password+${used}`;
    }
    await this.d.throttle.succeeded(key, ctx, opts);
    return { user: account, method };
  }

  private async failed(key: string, user: UserRow | null, reason: FailReason, ctx: RequestContext, opts: ThrottleOptions, place: SignInPlace): Promise<void> {
    const { lockAccount } = await this.d.throttle.failed(key, ctx, opts);
    if (user && lockAccount && user.locked_at === null) {
      await this.d.db.updateTable('users').set({ locked_at: this.d.clock.now() }).where('id', '=', user.id).execute();
      await this.d.events.record(this.d.db, 'account.locked', user.id, ctx, { reason: 'too many failed sign-ins' });
    }
    const data = { reason, ...(place.where ? { where: place.where } : {}), ...(opts.device ? { trustedDevice: true } : {}) };
    if (user) await this.d.events.record(this.d.db, 'signin.failed', user.id, ctx, data);
    this.d.metrics.signIns.inc({ outcome: 'failed' });
  }

  async signIn(input: { email: string; password: string; otp?: string | undefined }, ctx: RequestContext): Promise<SignInResult> {
    const { user, method } = await this.authenticate(input, ctx);
    const result = await this.d.db.transaction().execute((trx) => this.completeSignIn(trx, user, ctx, method));
    this.d.metrics.signIns.inc({ outcome: 'succeeded' });
    return { token: result.token, sessionId: result.id, expiresAt: result.expiresAt, userId: user.id, device: result.device };
  }

  /**
   * The end of every successful sign-in, whatever proved it (password here, passkey in the MFA
   * module), inside the caller's transaction: the session, its event, the device cookie's row and
   * the observers' side effects (the new-device notice) commit together, so no way of signing in
   * skips them. The caller has verified every factor the account requires; this method checks
   * none, but refuses an account whose address was never confirmed, whatever proved it.
   * `device` is the device cookie to set.
   */
  async completeSignIn(
    db: Db, user: Pick<UserRow, 'id' | 'email' | 'email_verified_at'>, ctx: RequestContext, method: string, eventData: Record<string, unknown> = {},
  ): Promise<{ id: string; token: string; expiresAt: number; device: string }> {
    if (user.email_verified_at === null) throw this.invalid();
    const description = describeDevice(ctx.userAgent);
    // New device: the browser presented no device cookie known for this account (the user agent
    // only describes it; anyone can send any user agent).
    const d = await this.d.devices.remember(db, ctx.device, user.id);
    const s = await this.d.sessions.create(db, user.id, ctx, method);
    await this.d.events.record(db, 'signin.succeeded', user.id, ctx, { session: s.id, method, ...eventData, newDevice: !d.known });
    for (const o of this.d.observers) await o.signedIn(db, user.id, user.email, { id: s.id, device: description, newDevice: !d.known }, ctx);
    return { ...s, device: d.cookie };
  }

  /** Remember this browser for the account after a sign-in that opens no account session (the console); returns the cookie to set. */
  async rememberDevice(db: Db, userId: string, ctx: RequestContext): Promise<string> {
    return (await this.d.devices.remember(db, ctx.device, userId)).cookie;
  }
}
