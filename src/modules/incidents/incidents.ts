/**
 * Incidents: opened by the guard (a flow escalated, a breaker tripped), deduplicated by key,
 * and classified from the evidence Floodgate already has — reset requests, user reports ("I
 * didn't request this"), sign-in failures and successes, and outbound mail by type and cause —
 * so an operator can tell an outside flood from an internal bug from a possible breach.
 */
import { sql, type Kysely } from 'kysely';
import { HOUR, type Clock } from '../../kernel/clock.js';
import { newId } from '../../kernel/ids.js';
import type { Database, Db } from '../../storage/schema.js';
import { courierStore } from '../notifications/index.js';

export type Classification = 'external_flood' | 'credential_stuffing' | 'internal_bug' | 'targeted_resets' | 'possible_breach' | 'unclear';

export interface Evidence {
  windowMinutes: number;
  resetRequests: number;
  resetDenials: number;
  signinFailures: number;
  signinSuccesses: number;
  newDeviceSignins: number;
  passwordResetsCompleted: number;
  mailByCause: { type: string; causeKind: string; count: number }[];
  held: number;
  unknownShare: number | null;
}

export interface ClassifiedIncident {
  classification: Classification;
  reasons: string[];
}

/** Rules, most specific first; each one says why in words an operator can repeat to users. */
export function classify(kind: string, e: Evidence, data: Record<string, unknown> = {}): ClassifiedIncident {
  const reasons: string[] = [];
  const internal = e.mailByCause.filter((m) => m.causeKind === 'operator' || m.causeKind === 'job').reduce((n, m) => n + m.count, 0);
  const anonymous = e.mailByCause.filter((m) => m.causeKind.startsWith('anonymous')).reduce((n, m) => n + m.count, 0);
  if (kind.startsWith('breaker:') && internal > anonymous) {
    reasons.push(`${internal} messages in the last ${e.windowMinutes} min were caused by operator actions or jobs, ${anonymous} by anonymous requests`);
    reasons.push('mail volume is driven from inside: look for a job or operator action that mails many accounts (a bug), not an attack');
    return { classification: 'internal_bug', reasons };
  }
  if (e.signinFailures > 50 && e.signinFailures > 5 * Math.max(1, e.signinSuccesses)) {
    reasons.push(`${e.signinFailures} failed sign-ins against ${e.signinSuccesses} successes in the last ${e.windowMinutes} min`);
    if (e.newDeviceSignins > 10) {
      reasons.push(`${e.newDeviceSignins} successful sign-ins from devices never seen before: some guessed passwords may be right`);
      return { classification: 'possible_breach', reasons };
    }
    reasons.push('pattern of credential stuffing: many accounts tried with leaked passwords');
    return { classification: 'credential_stuffing', reasons };
  }
  if (e.resetRequests > 0 && e.unknownShare !== null && e.unknownShare >= 0.3) {
    reasons.push(`${e.resetRequests} reset requests, ${Math.round(e.unknownShare * 100)}% for addresses with no account`);
    reasons.push('outsiders are requesting resets in bulk (enumeration or harassment); no data was exposed by this alone');
    return { classification: 'external_flood', reasons };
  }
  if (e.resetDenials >= 5 && e.resetDenials * 4 >= e.resetRequests) {
    reasons.push(`${e.resetDenials} users said "I didn't request this" for ${e.resetRequests} reset requests`);
    reasons.push('resets are being requested for real accounts by someone else: likely targeted, watch for completed resets');
    if (e.passwordResetsCompleted > 0) reasons.push(`${e.passwordResetsCompleted} resets were completed in the same window`);
    return { classification: 'targeted_resets', reasons };
  }
  const signals = Array.isArray(data.signals) ? (data.signals as unknown[]).map(String) : [];
  if (kind.startsWith('guard:') && (signals.length > 0 || (anonymous > 0 && anonymous >= internal))) {
    reasons.push(`anonymous ${kind.slice(6)} requests left their band${signals.length ? ` (${signals.join(', ')})` : ''}; ${anonymous} messages caused by anonymous requests in the window`);
    reasons.push('traffic from outside, answered with challenges: no account data is exposed by the requests themselves');
    return { classification: 'external_flood', reasons };
  }
  reasons.push('not enough evidence to classify yet');
  return { classification: 'unclear', reasons };
}

export interface IncidentView {
  id: string;
  kind: string;
  title: string;
  state: string;
  classification: Classification;
  openedAt: string;
  lastSeenAt: string;
  closedAt: string | null;
  data: Record<string, unknown>;
}

export class Incidents {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly unknownShare: () => Promise<number | null> = async () => null,
  ) {}

  /** Evidence from the last hour; `db` may be the caller's transaction (SQLite has one connection). */
  async evidence(windowMs = HOUR, db: Db = this.db): Promise<Evidence> {
    const since = this.clock.now() - windowMs;
    const events = await db.selectFrom('security_events').select(['type', (eb) => eb.fn.countAll<number>().as('n')]).where('at', '>=', since).groupBy('type').execute();
    const n = (t: string) => Number(events.find((e) => e.type === t)?.n ?? 0);
    const newDevice = await db.selectFrom('security_events').select((eb) => eb.fn.countAll<number>().as('n')).where('type', '=', 'signin.succeeded').where('at', '>=', since).where('data', 'like', '%"newDevice":true%').executeTakeFirst();
    const mailByCause = await courierStore.countsByCauseSince(db, since);
    const held = [...(await courierStore.heldByReason(db)).values()].reduce((a, b) => a + b, 0);
    return {
      windowMinutes: Math.round(windowMs / 60_000),
      resetRequests: n('password.reset_requested'),
      resetDenials: n('password.reset_denied'),
      signinFailures: n('signin.failed'),
      signinSuccesses: n('signin.succeeded'),
      newDeviceSignins: Number(newDevice?.n ?? 0),
      passwordResetsCompleted: n('password.reset_completed'),
      mailByCause,
      held,
      unknownShare: await this.unknownShare(),
    };
  }

  /** Open an incident for `key`, or touch the open one; returns its id. */
  async open(db: Db, key: string, title: string, data: Record<string, unknown>): Promise<string> {
    const now = this.clock.now();
    const evidence = await this.evidence(HOUR, db);
    const c = classify(key, evidence, data);
    const payload = JSON.stringify({ ...data, evidence, reasons: c.reasons });
    const id = newId(now);
    // The partial unique index (one open incident per key) settles races between workers.
    const inserted = await db
      .insertInto('incidents')
      .values({ id, key, kind: key.split(':')[0]!, title, state: 'open', classification: c.classification, opened_at: now, last_seen_at: now, closed_at: null, data: payload })
      .onConflict((oc) => oc.column('key').where('state', '=', sql.lit('open')).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted) return inserted.id;
    const existing = await db.updateTable('incidents').set({ last_seen_at: now, classification: c.classification, data: payload }).where('key', '=', key).where('state', '=', 'open').returning('id').executeTakeFirst();
    return existing?.id ?? id;
  }

  async close(db: Db, key: string): Promise<void> {
    await db.updateTable('incidents').set({ state: 'closed', closed_at: this.clock.now() }).where('key', '=', key).where('state', '=', 'open').execute();
  }

  async list(limit = 50): Promise<IncidentView[]> {
    const rows = await this.db.selectFrom('incidents').selectAll().orderBy('opened_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: r.id, kind: r.kind, title: r.title, state: r.state, classification: r.classification as Classification,
      openedAt: new Date(Number(r.opened_at)).toISOString(), lastSeenAt: new Date(Number(r.last_seen_at)).toISOString(),
      closedAt: r.closed_at === null ? null : new Date(Number(r.closed_at)).toISOString(), data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }
}

/** Every operator action, with who, when, what and why. Append-only. */
export class AuditLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  async record(db: Db, op: { id: string; name: string }, action: string, target: string, reason: string, data: Record<string, unknown> = {}): Promise<void> {
    const at = this.clock.now();
    await db.insertInto('audit_log').values({ id: newId(at), at, operator_id: op.id, operator_name: op.name, action, target, reason: reason.slice(0, 1000), data: JSON.stringify(data) }).execute();
  }

  async list(limit = 100) {
    const rows = await this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({ id: r.id, at: new Date(Number(r.at)).toISOString(), operator: r.operator_name, action: r.action, target: r.target, reason: r.reason, data: JSON.parse(r.data) as Record<string, unknown> }));
  }
}
