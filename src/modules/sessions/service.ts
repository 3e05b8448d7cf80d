/**
 * Sessions. Invariants:
 * - a session token is `id.secret` (96-bit id, 256-bit secret); only sha256(secret) is stored and
 *   it is compared in constant time;
 * - a session dies at its absolute expiry, after the idle timeout, or when revoked; a revoked or
 *   expired session is indistinguishable from an unknown one to the caller;
 * - last_seen is written at most once a minute per session (no write per request).
 */
import type { Kysely } from 'kysely';
import { MINUTE, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { prepared } from '../../storage/prepared.js';
import type { Database, Db, SessionsTable } from '../../storage/schema.js';
import type { SecurityEvents } from '../incidents/index.js';
import { describeDevice } from './device.js';
import { deviceStore } from './devices.js';
import { signinNoticeStore } from './new-device.js';

export interface SessionsDeps {
  db: Kysely<Database>;
  clock: Clock;
  events: SecurityEvents;
  idleMs: number;
  absoluteMs: number;
}

export interface SessionView {
  id: string;
  current: boolean;
  device: string;
  ip: string | null;
  authMethod: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

export interface ActiveSession {
  session: SessionsTable;
  userId: string;
}

// Runs on every sign-in: compiled once (storage/prepared.ts).
const insertSession = prepared((db, id: string, userId: string, secretHash: string, now: number, expiresAt: number, ip: string | null, userAgent: string | null, device: string, authMethod: string) =>
  db.insertInto('sessions').values({
    id, user_id: userId, secret_hash: secretHash, created_at: now, last_seen_at: now, expires_at: expiresAt,
    ip, user_agent: userAgent, device, auth_method: authMethod, revoked_at: null, revoked_reason: null,
  }));

export class SessionsService {
  constructor(private readonly d: SessionsDeps) {}

  /** Create a session inside the caller's transaction (so sign-in and its side effects commit together). */
  async create(db: Db, userId: string, ctx: RequestContext, authMethod: string): Promise<{ id: string; token: string; expiresAt: number }> {
    const now = this.d.clock.now();
    const t = mintToken();
    const expiresAt = now + this.d.absoluteMs;
    await insertSession(db, t.id, userId, t.secretHash, now, expiresAt, ctx.ip, ctx.userAgent?.slice(0, 512) ?? null, describeDevice(ctx.userAgent), authMethod);
    return { id: t.id, token: t.token, expiresAt };
  }

  /** The live session for a token, or null. Touches last_seen at most once a minute. */
  async authenticate(token: string): Promise<ActiveSession | null> {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const row = await this.d.db.selectFrom('sessions').selectAll().where('id', '=', parsed.id).executeTakeFirst();
    if (!row || !secretMatches(parsed.secret, row.secret_hash)) return null;
    const now = this.d.clock.now();
    if (row.revoked_at !== null || row.expires_at <= now || row.last_seen_at + this.d.idleMs <= now) return null;
    if (now - row.last_seen_at >= MINUTE) {
      await this.d.db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', row.id).execute();
      row.last_seen_at = now;
    }
    return { session: row, userId: row.user_id };
  }

  /** The expiry a client should show: the earlier of absolute and idle expiry. */
  effectiveExpiry(s: SessionsTable): number {
    return Math.min(s.expires_at, s.last_seen_at + this.d.idleMs);
  }

  async list(userId: string, currentId: string | null): Promise<SessionView[]> {
    const now = this.d.clock.now();
    const rows = await this.d.db
      .selectFrom('sessions').selectAll()
      .where('user_id', '=', userId).where('revoked_at', 'is', null).where('expires_at', '>', now).where('last_seen_at', '>', now - this.d.idleMs)
      .orderBy('last_seen_at', 'desc').limit(200).execute();
    return rows.map((r) => ({
      id: r.id, current: r.id === currentId, device: r.device ?? 'Unknown device', ip: r.ip, authMethod: r.auth_method,
      createdAt: iso(r.created_at), lastSeenAt: iso(r.last_seen_at), expiresAt: iso(this.effectiveExpiry(r)),
    }));
  }

  /** Revoke one of the user's sessions. false when it is not theirs or not live (same answer). */
  async revoke(userId: string, sessionId: string, ctx: RequestContext, reason = 'user'): Promise<boolean> {
    const now = this.d.clock.now();
    return this.d.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('sessions').set({ revoked_at: now, revoked_reason: reason })
        .where('id', '=', sessionId).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
      const ok = Number(r.numUpdatedRows) === 1;
      if (ok) await this.d.events.record(trx, reason === 'signout' ? 'session.signed_out' : 'session.revoked', userId, ctx, { session: sessionId, reason });
      return ok;
    });
  }

  /** Revoke every live session of the user except `keepId`; returns how many. */
  async revokeOthers(userId: string, keepId: string, ctx: RequestContext): Promise<number> {
    return this.d.db.transaction().execute(async (trx) => {
      const n = await this.revokeAll(trx, userId, 'revoked_others', keepId);
      await this.d.events.record(trx, 'session.revoked_others', userId, ctx, { count: n });
      return n;
    });
  }

  /** Revoke all live sessions of a user inside the caller's transaction (password change, reset). */
  async revokeAll(db: Db, userId: string, reason: string, exceptId?: string): Promise<number> {
    let q = db.updateTable('sessions').set({ revoked_at: this.d.clock.now(), revoked_reason: reason }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptId) q = q.where('id', '!=', exceptId);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Every live session of every account, revoked in the caller's transaction (an operator's answer
   * to a breach, ASVS 5.0 7.4.5). Device cookies stay: owners signing in again are not strangers.
   */
  async revokeEveryone(db: Db, reason: string): Promise<number> {
    const r = await db.updateTable('sessions').set({ revoked_at: this.d.clock.now(), revoked_reason: reason }).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Whether the account has a live session used within `withinMs` (a device that can answer a prompt). */
  async hasRecentSession(userId: string, withinMs: number): Promise<boolean> {
    const now = this.d.clock.now();
    const r = await this.d.db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).where('expires_at', '>', now).where('last_seen_at', '>', now - Math.min(withinMs, this.d.idleMs)).limit(1).executeTakeFirst();
    return r !== undefined;
  }

  /**
   * Everything that lets someone act as the account without signing in again, ended inside the
   * caller's transaction: live sessions revoked, device cookies and "this wasn't me" tokens
   * forgotten. For an address proven for the first time (what a squatter left behind goes).
   */
  async endAllAccess(db: Db, userId: string, reason: string): Promise<{ sessions: number; devices: number }> {
    const sessions = await this.revokeAll(db, userId, reason);
    const devices = await deviceStore.deleteAccount(db, userId);
    await signinNoticeStore.deleteAccount(db, userId);
    return { sessions, devices };
  }
}

function iso(ms: number): string {
  return new Date(Number(ms)).toISOString();
}
