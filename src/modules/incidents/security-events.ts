/**
 * The security event log: append-only (no update or delete path exists in code). Events carry
 * time, account, client address, device and request id, plus non-secret details. Later
 * detectors read it to open incidents.
 */
import type { Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { newId } from '../../kernel/ids.js';
import { prepared } from '../../storage/prepared.js';
import type { Db } from '../../storage/schema.js';
import { describeDevice } from '../sessions/device.js';

export type SecurityEventType =
  | 'account.created'
  | 'account.signup_existing'
  | 'account.email_verified'
  | 'account.pre_verification_cleared'
  | 'account.imported'
  | 'account.locked'
  | 'account.unlocked'
  | 'signin.succeeded'
  | 'signin.failed'
  | 'signin.throttled'
  | 'signin.reported_not_me'
  | 'session.revoked'
  | 'session.revoked_others'
  | 'session.signed_out'
  | 'password.changed'
  | 'password.rehashed'
  | 'password.reset_requested'
  | 'password.reset_denied'
  | 'password.reset_completed'
  | 'password.reset_mfa_failed'
  | 'mfa.totp_enrolled'
  | 'mfa.totp_removed'
  | 'mfa.recovery_code_used'
  | 'mfa.passkey_added'
  | 'mfa.passkey_removed'
  | 'mfa.recovery_codes_regenerated'
  | 'guard.mode_changed'
  | 'console.signed_in'
  | 'operator.action';

export interface SecurityEvent {
  id: string;
  type: string;
  at: string;
  ip: string | null;
  device: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
}

// Written on every sign-in and most other requests: compiled once (storage/prepared.ts).
const insertEvent = prepared((db, id: string, userId: string | null, type: string, at: number, ip: string | null, device: string | null, requestId: string | null, data: string) =>
  db.insertInto('security_events').values({ id, user_id: userId, type, at, ip, device, request_id: requestId, data }));

export class SecurityEvents {
  constructor(private readonly clock: Clock) {}

  async record(db: Db, type: SecurityEventType, userId: string | null, ctx: RequestContext | null, data: Record<string, unknown> = {}): Promise<void> {
    const at = this.clock.now();
    await insertEvent(db, newId(at), userId, type, at, ctx?.ip ?? null, ctx?.userAgent ? describeDevice(ctx.userAgent) : null, ctx?.requestId ?? null, JSON.stringify(data));
  }

  async listForUser(db: Db, userId: string, limit = 50, before?: string): Promise<SecurityEvent[]> {
    let q = db.selectFrom('security_events').selectAll().where('user_id', '=', userId);
    if (before) q = q.where('id', '<', before);
    const rows = await q.orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: r.id,
      type: r.type,
      at: new Date(Number(r.at)).toISOString(),
      ip: r.ip,
      device: r.device,
      requestId: r.request_id,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  async countSince(db: Db, type: SecurityEventType, sinceMs: number): Promise<number> {
    const r = await db.selectFrom('security_events').select((eb) => eb.fn.countAll<number>().as('n')).where('type', '=', type).where('at', '>=', sinceMs).executeTakeFirst();
    return Number(r?.n ?? 0);
  }
}
