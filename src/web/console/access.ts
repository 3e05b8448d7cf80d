/**
 * Who may use the operator console, and its sessions. Invariants:
 * - an operator is a user account granted the operator role (`floodgate operators grant EMAIL`);
 *   the grant is a row in console_operators, revoked rows stay (who granted, who revoked, when);
 * - a console session token is `id.secret` like a user session: only sha256(secret) is stored,
 *   compared in constant time; it lives 12 hours at most, ends after 30 minutes without a
 *   request (idle, sliding, kept server side in last_seen_at and checked on every console
 *   request), and never outlives its grant, the account's password (a change after sign-in ends
 *   it) or a lock of the account;
 * - console sessions are a separate table and a separate cookie: a person's session never opens
 *   the console, and a console session is not a user session.
 */
import type { Kysely } from 'kysely';
import { HOUR, MINUTE, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { AppError } from '../../kernel/errors.js';
import type { AccountsService } from '../../modules/accounts/index.js';
import type { AuditLog } from '../../modules/incidents/index.js';
import type { Database, Db } from '../../storage/schema.js';
import { cookieName } from '../../http/cookies.js';

/** The console cookie's name on http (`__Host-floodgate_console`, Path=/, on https: http/cookies.ts). */
export const CONSOLE_COOKIE = cookieName('console', false);
export const CONSOLE_SESSION_MS = 12 * HOUR;
/** A console session unused this long ends (the absolute 12 hours still apply). */
export const CONSOLE_IDLE_MS = 30 * MINUTE;
/** last_seen_at is written at most this often: an idle session ends 29 to 30 minutes after its last request. */
const TOUCH_MS = MINUTE;

/** The operator as the audit log and the outbound guard know them. */
export interface ConsoleOperator {
  id: string;
  name: string;
}

export interface ConsoleSession {
  id: string;
  userId: string;
  email: string;
  createdAt: number;
  expiresAt: number;
  operator: ConsoleOperator;
}

export interface GrantView {
  userId: string;
  email: string | null;
  grantedBy: string;
  grantedAt: number;
  revokedAt: number | null;
}

export function operatorOf(userId: string, email: string): ConsoleOperator {
  return { id: `user:${userId}`, name: email };
}

/** The operator ids (`user:<id>`) of every account with a live console grant. */
export async function grantedOperatorIds(db: Db): Promise<string[]> {
  return (await db.selectFrom('console_operators').select('user_id').where('revoked_at', 'is', null).execute()).map((r) => `user:${r.user_id}`);
}

export class ConsoleAccess {
  constructor(
    private readonly d: { db: Kysely<Database>; clock: Clock; accounts: AccountsService; audit: AuditLog },
  ) {}

  /** Grant the operator role to an existing account (idempotent; a revoked grant is renewed). */
  async grant(email: string, by: ConsoleOperator, reason: string): Promise<{ userId: string; email: string }> {
    const user = await this.d.accounts.findByEmail(email);
    if (!user) throw new AppError('not_found', `No account has the address ${email}: create it first (POST /api/v1/admin/users or sign-up).`);
    const now = this.d.clock.now();
    await this.d.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('console_operators').select('user_id').where('user_id', '=', user.id).executeTakeFirst();
      if (existing) await trx.updateTable('console_operators').set({ granted_by: by.name, granted_at: now, revoked_by: null, revoked_at: null }).where('user_id', '=', user.id).execute();
      else await trx.insertInto('console_operators').values({ user_id: user.id, granted_by: by.name, granted_at: now, revoked_by: null, revoked_at: null }).execute();
      await this.d.audit.record(trx, by, 'console.grant', user.email, reason);
    });
    return { userId: user.id, email: user.email };
  }

  /** Take the role away; its console sessions end at once. false when the account had no live grant. */
  async revokeGrant(email: string, by: ConsoleOperator, reason: string): Promise<boolean> {
    const user = await this.d.accounts.findByEmail(email);
    if (!user) return false;
    const now = this.d.clock.now();
    return this.d.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('console_operators').set({ revoked_by: by.name, revoked_at: now }).where('user_id', '=', user.id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await trx.updateTable('console_sessions').set({ revoked_at: now }).where('user_id', '=', user.id).where('revoked_at', 'is', null).execute();
      await this.d.audit.record(trx, by, 'console.revoke_grant', user.email, reason);
      return true;
    });
  }

  async isOperator(db: Db, userId: string): Promise<boolean> {
    const r = await db.selectFrom('console_operators').select('user_id').where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
    return r !== undefined;
  }

  async list(): Promise<GrantView[]> {
    const rows = await this.d.db.selectFrom('console_operators').selectAll().orderBy('granted_at', 'desc').execute();
    return Promise.all(rows.map(async (r) => ({
      userId: r.user_id, email: (await this.d.accounts.findById(r.user_id))?.email ?? null, grantedBy: r.granted_by, grantedAt: Number(r.granted_at), revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    })));
  }

  /** A new console session in the caller's transaction; the token is returned once. */
  async createSession(db: Db, userId: string, ctx: RequestContext, authMethod: string): Promise<{ id: string; token: string; expiresAt: number }> {
    const now = this.d.clock.now();
    const t = mintToken();
    const expiresAt = now + CONSOLE_SESSION_MS;
    await db.insertInto('console_sessions').values({
      id: t.id, user_id: userId, secret_hash: t.secretHash, created_at: now, last_seen_at: now, expires_at: expiresAt,
      ip: ctx.ip, user_agent: ctx.userAgent?.slice(0, 512) ?? null, auth_method: authMethod, revoked_at: null,
    }).execute();
    return { id: t.id, token: t.token, expiresAt };
  }

  /**
   * The live console session for a cookie value, or null (unknown, expired, idle, revoked, grant
   * gone, password changed, locked). A request counts as activity (it slides the idle timeout)
   * unless `touch` is false: the live feed re-checks its session without keeping it alive.
   */
  async authenticate(token: string | undefined, opts: { touch?: boolean } = {}): Promise<ConsoleSession | null> {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const row = await this.d.db.selectFrom('console_sessions').selectAll().where('id', '=', parsed.id).executeTakeFirst();
    if (!row || !secretMatches(parsed.secret, row.secret_hash)) return null;
    const now = this.d.clock.now();
    if (row.revoked_at !== null || Number(row.expires_at) <= now) return null;
    // An unattended console is closed: a stolen laptop or an open tab is not a 12-hour pass.
    if (now - Number(row.last_seen_at) >= CONSOLE_IDLE_MS) return null;
    if (!(await this.isOperator(this.d.db, row.user_id))) return null;
    const user = await this.d.accounts.findById(row.user_id);
    // A password change or a lock after sign-in ends the console session too.
    if (!user || user.locked_at !== null || (user.password_changed_at !== null && Number(user.password_changed_at) > Number(row.created_at))) return null;
    if (opts.touch !== false && now - Number(row.last_seen_at) >= TOUCH_MS) {
      await this.d.db.updateTable('console_sessions').set({ last_seen_at: now }).where('id', '=', row.id).execute();
    }
    return { id: row.id, userId: row.user_id, email: user.email, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at), operator: operatorOf(row.user_id, user.email) };
  }

  async revokeSession(id: string): Promise<void> {
    await this.d.db.updateTable('console_sessions').set({ revoked_at: this.d.clock.now() }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }
}
