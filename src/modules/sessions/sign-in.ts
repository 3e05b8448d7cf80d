/**
 * The sign-in flow: throttle -> credentials -> lock -> second factor -> session.
 * Invariants:
 * - any wrong credential (unknown email, wrong password, locked account) is one generic 401,
 *   after the same work; `mfa_required` is answered only after a correct password;
 * - throttling is checked before any password work and keyed so it reveals nothing;
 * - the session, its security event and its notices commit in one transaction.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { normalizeEmail } from '../../kernel/email.js';
import { AppError } from '../../kernel/errors.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { Database, Db } from '../../storage/schema.js';
import type { AccountsService } from '../accounts/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import { describeDevice } from './device.js';
import type { SecondFactor, SignInObserver, SignInThrottle } from './ports.js';
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
}

export interface SignInResult {
  token: string;
  sessionId: string;
  expiresAt: number;
  userId: string;
}

export class SignInFlow {
  constructor(private readonly d: SignInDeps) {}

  invalid(): AppError {
    return new AppError('invalid_credentials', 'The email or password is incorrect.');
  }

  async signIn(input: { email: string; password: string; otp?: string | undefined }, ctx: RequestContext): Promise<SignInResult> {
    const key = normalizeEmail(input.email).slice(0, 320);
    const wait = await this.d.throttle.check(key, ctx);
    if (wait !== null) {
      this.d.metrics.signIns.inc({ outcome: 'throttled' });
      throw new AppError('rate_limited', 'Too many sign-in attempts. Try again later.', { headers: { 'retry-after': String(Math.max(1, Math.ceil(wait))) } });
    }
    const { user, ok } = await this.d.accounts.verifyCredentials(input.email, input.password, ctx);
    if (!user || !ok || user.locked_at !== null) {
      const { lockAccount } = await this.d.throttle.failed(key, ctx);
      if (user && lockAccount && user.locked_at === null) {
        await this.d.db.updateTable('users').set({ locked_at: this.d.clock.now() }).where('id', '=', user.id).execute();
        await this.d.events.record(this.d.db, 'account.locked', user.id, ctx, { reason: 'too many failed sign-ins' });
      }
      if (user) await this.d.events.record(this.d.db, 'signin.failed', user.id, ctx, { reason: ok ? 'locked' : 'password' });
      this.d.metrics.signIns.inc({ outcome: 'failed' });
      throw this.invalid();
    }
    let method = 'password';
    if (await this.d.secondFactor.required(user.id)) {
      if (!input.otp) {
        this.d.metrics.signIns.inc({ outcome: 'mfa_required' });
        throw new AppError('mfa_required', 'This account uses two-step verification: repeat the request with `otp` (a code from your authenticator app or a recovery code), or sign in with a passkey.');
      }
      const used = await this.d.db.transaction().execute((trx) => this.d.secondFactor.verify(trx, user.id, input.otp!, ctx));
      if (!used) {
        await this.d.throttle.failed(key, ctx);
        await this.d.events.record(this.d.db, 'signin.failed', user.id, ctx, { reason: 'second_factor' });
        this.d.metrics.signIns.inc({ outcome: 'failed' });
        throw new AppError('invalid_credentials', 'The code is incorrect or was already used.');
      }
      method = `password+${used}`;
    }
    await this.d.throttle.succeeded(key, ctx);
    const result = await this.d.db.transaction().execute((trx) => this.completeSignIn(trx, user, ctx, method));
    this.d.metrics.signIns.inc({ outcome: 'succeeded' });
    return { token: result.token, sessionId: result.id, expiresAt: result.expiresAt, userId: user.id };
  }

  /**
   * The end of every successful sign-in, whatever proved it (password here, passkey in the MFA
   * module), inside the caller's transaction: the session, its event and the observers' side
   * effects (the new-device notice) commit together, so no way of signing in skips them. The
   * caller has verified every factor the account requires; this method checks none.
   */
  async completeSignIn(db: Db, user: { id: string; email: string }, ctx: RequestContext, method: string, eventData: Record<string, unknown> = {}): Promise<{ id: string; token: string; expiresAt: number }> {
    const device = describeDevice(ctx.userAgent);
    const newDevice = !(await this.d.sessions.seenDevice(db, user.id, device));
    const s = await this.d.sessions.create(db, user.id, ctx, method);
    await this.d.events.record(db, 'signin.succeeded', user.id, ctx, { session: s.id, method, ...eventData, newDevice });
    for (const o of this.d.observers) await o.signedIn(db, user.id, user.email, { id: s.id, device, newDevice }, ctx);
    return s;
  }
}
