/**
 * Password change by the signed-in owner. Invariants:
 * - the current password is checked (same cost as sign-in, wrong ones limited per account), so a
 *   stolen session alone cannot change it;
 * - the new one passes the same rules as sign-up (length, not the email, not breached);
 * - the new hash, the revocation of other sessions (default on), the security event and the
 *   `password_changed` notice commit in one transaction.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../storage/schema.js';
import { PASSWORD_PROBLEM_TEXT, type AccountsService, type BreachedPasswords, type PasswordHasher } from '../accounts/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import type { Outbox } from '../notifications/index.js';
import { describeDevice, type SessionsService } from '../sessions/index.js';
import type { Actor } from './model.js';
import type { MfaService } from './service.js';

export interface PasswordChangeDeps {
  db: Kysely<Database>;
  clock: Clock;
  accounts: AccountsService;
  sessions: SessionsService;
  events: SecurityEvents;
  outbox: Outbox;
  hasher: PasswordHasher;
  breached: BreachedPasswords;
  mfa: MfaService;
}

export class PasswordChange {
  constructor(private readonly d: PasswordChangeDeps) {}

  async change(actor: Actor, input: { current: string; password: string; revokeOtherSessions?: boolean | undefined }, ctx: RequestContext): Promise<{ revokedSessions: number }> {
    await this.d.mfa.confirmPassword(actor.userId, input.current, ctx);
    const user = await this.d.accounts.findById(actor.userId);
    if (!user) throw new AppError('unauthenticated');
    const problem = await this.d.accounts.passwordProblem(input.password, user.email_normalized);
    if (problem) {
      throw new AppError('weak_password', PASSWORD_PROBLEM_TEXT[problem], { extra: { reason: problem, errors: [{ field: 'password', message: PASSWORD_PROBLEM_TEXT[problem] }] } });
    }
    const hash = await this.d.hasher.hash(input.password);
    const revokeOthers = input.revokeOtherSessions ?? true;
    const now = this.d.clock.now();
    return this.d.db.transaction().execute(async (trx) => {
      await this.d.accounts.setPassword(trx, user.id, hash);
      // Whoever else holds a session may be the reason for the change: they go unless the owner says otherwise.
      const revoked = revokeOthers ? await this.d.sessions.revokeAll(trx, user.id, 'password_changed', actor.sessionId) : 0;
      await this.d.events.record(trx, 'password.changed', user.id, ctx, { via: 'change', revokedSessions: revoked });
      await this.d.outbox.enqueue(trx, {
        type: 'password_changed', channel: 'email', userId: user.id, recipient: user.email,
        cause: { kind: 'user', userId: user.id, requestId: ctx.requestId, ip: ctx.ip },
        data: { email: user.email, at: new Date(now).toISOString(), device: describeDevice(ctx.userAgent), ip: ctx.ip },
      });
      return { revokedSessions: revoked };
    });
  }
}
