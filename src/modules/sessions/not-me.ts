/**
 * "This wasn't me" on a new-sign-in notice. Invariants:
 * - looking at a token (`peek`, what GET of the link does) changes nothing: mail scanners open links;
 * - a token acts at most once: its DELETE is the check, in the transaction that records the report;
 * - it revokes exactly the session it was minted for, of the account it was minted for;
 * - every failure a token holder can cause (malformed, unknown, wrong secret, used, expired) is one
 *   generic `invalid_token`, and the secret is compared in constant time;
 * - the protective act comes first: the session is revoked before the reset is asked for, and the
 *   reset guard's refusal (meant for anonymous floods) cannot stop the owner's own reset.
 */
import type { Kysely } from 'kysely';
import { MINUTE, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { parseToken, secretMatches } from '../../kernel/crypto.js';
import { AppError, isAppError } from '../../kernel/errors.js';
import type { Database } from '../../storage/schema.js';
import type { AccountsService } from '../accounts/index.js';
import { sourceKey, type LimitRule, type RateLimiter } from '../guard/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import { signinNoticeStore as store } from './new-device.js';
import type { PasswordResets } from './ports.js';
import type { SessionsService } from './service.js';

/** Reports per client address: a token is unguessable, this only bounds the work one source causes. */
export const NOT_ME_PER_SOURCE: LimitRule = { windowMs: MINUTE, limit: 10 };

export interface NotMeDeps {
  db: Kysely<Database>;
  clock: Clock;
  sessions: SessionsService;
  accounts: Pick<AccountsService, 'findById'>;
  events: SecurityEvents;
  limiter: RateLimiter;
  resets: PasswordResets;
}

/** What the page shows about the sign-in being reported. */
export interface ReportedSignIn {
  device: string;
  ip: string | null;
  at: number;
}

export class NotMeService {
  constructor(private readonly d: NotMeDeps) {}

  invalidToken(): AppError {
    return new AppError('invalid_token', 'This link is invalid, was already used, or has expired.');
  }

  private async find(token: unknown) {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const row = await store.find(this.d.db, parsed.id);
    if (!row || !secretMatches(parsed.secret, row.secret_hash) || row.expires_at <= this.d.clock.now()) return null;
    return row;
  }

  /** The sign-in a token would report, or null when it would be refused. Read-only. */
  async peek(token: unknown): Promise<ReportedSignIn | null> {
    const row = await this.find(token);
    if (!row) return null;
    const s = await store.sessionSummary(this.d.db, row.session_id);
    return { device: s?.device ?? 'Unknown device', ip: s?.ip ?? null, at: Number(s?.created_at ?? row.created_at) };
  }

  /**
   * Act on "this wasn't me": revoke that session, record the report, and start a password reset
   * for the owner. Throws invalid_token or rate_limited.
   */
  async report(token: unknown, ctx: RequestContext): Promise<{ revoked: boolean }> {
    const hit = await this.d.limiter.hit(`signin-not-me:${sourceKey(ctx.ip)}`, NOT_ME_PER_SOURCE);
    if (!hit.allowed) throw new AppError('rate_limited', 'Too many requests from your network. Try again later.', { headers: { 'retry-after': String(Math.max(1, Math.ceil(hit.retryAfterMs / 1000))) } });
    const row = await this.find(token);
    if (!row) throw this.invalidToken();
    const user = await this.d.accounts.findById(row.user_id);
    if (!user) throw this.invalidToken();
    // Revoked before the token is spent: if anything below fails, the link still works for a retry.
    // `revoked` is false when the session had already ended (signed out, or revoked by an earlier try).
    const revoked = await this.d.sessions.revoke(user.id, row.session_id, ctx, 'not_me');
    const consumed = await this.d.db.transaction().execute(async (trx) => {
      if (!(await store.consume(trx, row.id, this.d.clock.now()))) return false;
      await this.d.events.record(trx, 'signin.reported_not_me', user.id, ctx, { session: row.session_id, revoked, signedInAt: new Date(Number(row.created_at)).toISOString() });
      return true;
    });
    if (!consumed) throw this.invalidToken();
    await this.startReset(user, ctx);
    return { revoked };
  }

  private async startReset(user: { id: string; email: string }, ctx: RequestContext): Promise<void> {
    try {
      await this.d.resets.request(user.email, ctx, user.id);
    } catch (e) {
      if (!isAppError(e) || (e.code !== 'challenge_required' && e.code !== 'rate_limited')) throw e;
      // The reset guard's per-source limits and challenges are for anonymous requests. This one is
      // the owner's, proven by a single-use link from their own mailbox: it goes the way of the
      // owner's in-app "yes, it was me", so an attack on the reset flow cannot block it.
      await this.d.resets.requestAsOwner(user.id, ctx);
    }
  }
}
