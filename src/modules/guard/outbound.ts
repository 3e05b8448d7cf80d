/**
 * The outbound guard: breakers on the courier, kill switches and the blast radius. Invariants:
 * - a message is only ever held, never dropped; operators release or discard, and each act is
 *   audited with who, when and why;
 * - budgets are kept per message type and per cause kind, so an outside flood (anonymous) and an
 *   internal bug (operator, job) trip different breakers and look different;
 * - protective notices (password changed, new sign-in, MFA changed) have budgets of their own:
 *   a flood of reset requests can never silence them;
 * - past FOLD_AFTER a day per account, protective emails fold into the in-app inbox (recorded for
 *   the account's daily digest) instead of being held: they still reach the person, never dropped;
 * - any single operator action or job mails at most FLOODGATE_BLAST_RADIUS recipients before the
 *   rest waits for an approval.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { DAY, HOUR, MINUTE, type Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { Database, Db } from '../../storage/schema.js';
import type { AuditLog, Incidents } from '../incidents/index.js';
import { courierStore, type DeliveryGate, type DeliveryRow, type GateDecision } from '../notifications/index.js';
import { noticeFolds, utcDay } from '../notifications/index.js';
import type { GuardStore } from './store.js';

export interface Budget {
  /** Floor of the per-minute band before a baseline exists. */
  perMinute: number;
  /** Hard ceiling per hour, whatever the baseline. */
  perHour: number;
}

const PROTECTIVE = new Set(['password_changed', 'new_signin', 'second_factor_failed', 'mfa_changed', 'email_changed']);

/** Budgets per message type and cause kind; `*` is the default for a type or a cause. */
export function budgetFor(type: string, causeKind: string): Budget {
  if (PROTECTIVE.has(type)) return { perMinute: 300, perHour: 5_000 };
  if (causeKind === 'operator' || causeKind === 'job') return { perMinute: 600, perHour: 20_000 };
  // Requests that paid a proof of work: a wider band, since each one cost its sender real work.
  if (causeKind === 'anonymous_pow') return { perMinute: 120, perHour: 2_000 };
  switch (type) {
    case 'password_reset':
      return { perMinute: 30, perHour: 400 };
    case 'verify_email':
    case 'signup_existing':
      return { perMinute: 30, perHour: 400 };
    default:
      return { perMinute: 60, perHour: 1_000 };
  }
}

/** Band factor over the learned per-minute baseline. */
const FACTOR = 5;

/** Protective emails per account per UTC day; the rest of the day's fold into the in-app inbox and a digest. */
export const FOLD_AFTER = 3;

export interface OutboundDeps {
  db: Kysely<Database>;
  store: GuardStore;
  clock: Clock;
  metrics: Metrics;
  incidents: Incidents;
  audit: AuditLog;
  logger: Logger;
  blastRadius: number;
  /** Holds kept by other modules (e.g. `flow:reset`: reset requests waiting in the intake). */
  holds?: Record<string, ExternalHold>;
  /** Protective emails per account per day before folding (default FOLD_AFTER). */
  foldAfter?: number;
}

export interface ExternalHold {
  count(): Promise<number>;
  release(): Promise<number>;
  discard(): Promise<number>;
}

export interface KillSwitch {
  name: string;
  action: 'pause' | 'inbox_only';
  reason: string;
  setBy: string;
  setAt: string;
}

export interface Operator {
  id: string;
  name: string;
}

export class OutboundGuard implements DeliveryGate {
  private switches: { at: number; map: Map<string, KillSwitch['action']> } = { at: -Infinity, map: new Map() };
  private open: { at: number; set: Set<string> } = { at: -Infinity, set: new Set() };

  constructor(private readonly d: OutboundDeps) {}

  private async killSwitches(): Promise<Map<string, KillSwitch['action']>> {
    const now = this.d.clock.now();
    if (now - this.switches.at < 1000 && now >= this.switches.at) return this.switches.map;
    const rows = await this.d.db.selectFrom('kill_switches').select(['name', 'action']).execute();
    this.switches = { at: now, map: new Map(rows.map((r) => [r.name, r.action as KillSwitch['action']])) };
    return this.switches.map;
  }

  private async openBreakers(): Promise<Set<string>> {
    const now = this.d.clock.now();
    if (now - this.open.at < 1000 && now >= this.open.at) return this.open.set;
    const rows = await this.d.db.selectFrom('breakers').select('name').where('state', '=', 'open').execute();
    this.open = { at: now, set: new Set(rows.map((r) => r.name)) };
    return this.open.set;
  }

  private invalidate(): void {
    this.switches.at = -Infinity;
    this.open.at = -Infinity;
  }

  async decide(row: DeliveryRow): Promise<GateDecision> {
    // Released by an operator: already judged, and not counted twice.
    if (row.held_reason?.startsWith('released:')) return { action: 'send' };
    const switches = await this.killSwitches();
    const ks = switches.get(`type:${row.type}`);
    if (ks === 'pause') return { action: 'hold', reason: `kill_switch:type:${row.type}` };
    if (ks === 'inbox_only' && row.channel === 'email' && row.user_id) return { action: 'reroute', channel: 'inbox', reason: `kill_switch:type:${row.type}` };

    // Priority lanes: a few protective emails a day per account, then the inbox and one digest, so
    // neither a flood nor a bug can bury a person's mailbox in alerts, and none is lost.
    if (PROTECTIVE.has(row.type) && row.channel === 'email' && row.user_id && (await this.fold(row, row.user_id))) {
      return { action: 'reroute', channel: 'inbox', reason: 'folded' };
    }

    // Blast radius: one operator action or job mails at most N recipients before approval.
    if ((row.cause_kind === 'operator' || row.cause_kind === 'job') && row.attempts === 0) {
      const approved = await this.d.db.selectFrom('cause_approvals').select('cause_id').where('cause_id', '=', row.cause_id).executeTakeFirst();
      if (!approved) {
        const key = `blast:${row.cause_id}`;
        const n = await this.d.store.counter(key);
        if (n >= this.d.blastRadius) {
          await this.d.incidents.open(this.d.db, `blast:${row.cause_id}`, `An ${row.cause_kind} action wants to mail more than ${this.d.blastRadius} recipients`, { causeId: row.cause_id, type: row.type });
          return { action: 'hold', reason: `blast_radius:${row.cause_id}` };
        }
        await this.d.store.incr(key, 1, 7 * DAY);
      }
    }

    const name = `${row.type}:${row.cause_kind}`;
    if ((await this.openBreakers()).has(name)) return { action: 'hold', reason: `breaker:${name}` };
    if (row.attempts > 0) return { action: 'send' }; // a retry was counted on its first attempt

    const budget = budgetFor(row.type, row.cause_kind);
    const baseline = Number((await this.d.store.getValue(`breaker-baseline:${name}`)) ?? 0);
    const perMinute = Math.max(budget.perMinute, Math.round(baseline * FACTOR));
    const minute = await this.d.store.hit(`breaker:${name}:m`, { windowMs: MINUTE, limit: perMinute });
    const hour = minute.allowed ? await this.d.store.hit(`breaker:${name}:h`, { windowMs: HOUR, limit: budget.perHour }) : minute;
    if (!minute.allowed || !hour.allowed) {
      await this.trip(name, minute.allowed ? `more than ${budget.perHour} per hour (hard ceiling)` : `more than ${perMinute} per minute (band: floor ${budget.perMinute}, baseline ${baseline.toFixed(1)}/min x ${FACTOR})`, null);
      return { action: 'hold', reason: `breaker:${name}` };
    }
    await this.learn(name);
    return { action: 'send' };
  }

  /**
   * Whether this protective email folds into the inbox: counted once per row (on its first
   * attempt) per account and UTC day; a retry is judged against the day's count so far. Two
   * workers racing may fold one more than needed, never mail more than the cap.
   */
  private async fold(row: DeliveryRow, userId: string): Promise<boolean> {
    const now = this.d.clock.now();
    const day = utcDay(now);
    const key = `fold:${userId}:${day}`;
    if (row.attempts === 0) await this.d.store.incr(key, 1, 2 * DAY);
    if ((await this.d.store.counter(key)) <= (this.d.foldAfter ?? FOLD_AFTER)) return false;
    await noticeFolds.record(this.d.db, { outboxId: row.id, userId, type: row.type, day, at: now });
    this.d.metrics.messages.inc({ type: row.type, channel: 'email', event: 'folded' });
    return true;
  }

  /** Fold the previous minute's count into the breaker's baseline once per minute (EWMA). */
  private async learn(name: string): Promise<void> {
    const now = this.d.clock.now();
    const w = Math.floor(now / MINUTE);
    if (!(await this.d.store.once(`breaker-learn:${name}:${w}`, 2 * MINUTE))) return;
    const prevCount = await this.d.store.peek(`breaker:${name}:m`, { windowMs: MINUTE, limit: 1 });
    const old = Number((await this.d.store.getValue(`breaker-baseline:${name}`)) ?? 0);
    await this.d.store.setValue(`breaker-baseline:${name}`, String(old + 0.05 * (prevCount - old)));
  }

  async trip(name: string, reason: string, by: Operator | null): Promise<void> {
    const now = this.d.clock.now();
    await this.d.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('breakers').set({ state: 'open', reason, tripped_by: by?.name ?? null, tripped_at: now, updated_at: now }).where('name', '=', name).where('state', '!=', 'open').executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) {
        await trx.insertInto('breakers').values({ name, state: 'open', reason, tripped_by: by?.name ?? null, tripped_at: now, updated_at: now }).onConflict((oc) => oc.column('name').doNothing()).execute();
      }
      await this.d.incidents.open(trx, `breaker:${name}`, `Breaker ${name} tripped: ${reason}`, { breaker: name, reason, by: by?.name ?? 'guard' });
      if (by) await this.d.audit.record(trx, by, 'breaker.trip', name, reason);
    });
    this.invalidate();
    this.d.metrics.messages.inc({ type: name.split(':')[0]!, channel: '*', event: 'breaker_tripped' });
    this.d.logger.warn({ breaker: name, reason }, `breaker ${name} tripped: further messages are held`);
  }

  /**
   * Release held messages (and close the breaker): they go out once each. A broadcast's blast
   * hold is refused here: only its approval (Broadcasts.approve, with the approval rule) releases it.
   */
  async release(name: string, op: Operator, reason: string): Promise<number> {
    const ext = this.d.holds?.[name];
    if (ext) {
      const n = await ext.release();
      await this.d.audit.record(this.d.db, op, 'hold.release', name, reason, { released: n });
      return n;
    }
    const broadcast = name.startsWith('blast:') ? broadcastOfCause(name.slice(6)) : null;
    // Otherwise the broadcast's creator could release their own held broadcast here, past the two-person rule.
    if (broadcast) {
      throw new AppError('conflict',
        `This hold is broadcast ${broadcast}: release it by approving the broadcast (POST /api/v1/admin/broadcasts/${broadcast}/approve), where the approval rule applies, or discard it.`,
        { extra: { reason: 'broadcast_hold', broadcast } });
    }
    const n = await this.d.db.transaction().execute((trx) => this.releaseIn(trx, name, op, reason));
    // Messages of this breaker now measure against a fresh window.
    for (const suffix of ['m', 'h']) await this.d.store.reset(`breaker:${name}:${suffix}`);
    this.invalidate();
    return n;
  }

  /**
   * Release the blast hold of an approved broadcast, in the approval's transaction (Broadcasts
   * calls it once the approval rule is met). Audited like any release.
   */
  releaseApprovedBlast(trx: Db, causeId: string, op: Operator, reason: string): Promise<number> {
    return this.releaseIn(trx, `blast:${causeId}`, op, reason);
  }

  private async releaseIn(trx: Db, name: string, op: Operator, reason: string): Promise<number> {
    const now = this.d.clock.now();
    const released = await courierStore.releaseHeld(trx, now, { reason: heldReasonFor(name) });
    if (name.startsWith('blast:')) {
      await trx.insertInto('cause_approvals').values({ cause_id: name.slice(6), approved_by: op.name, approved_at: now }).onConflict((oc) => oc.column('cause_id').doNothing()).execute();
    } else {
      await trx.updateTable('breakers').set({ state: 'closed', reason, updated_at: now }).where('name', '=', name).execute();
    }
    await this.d.incidents.close(trx, name.startsWith('blast:') ? name : `breaker:${name}`);
    await this.d.audit.record(trx, op, 'breaker.release', name, reason, { released: released.length });
    return released.length;
  }

  /** Discard held messages (and close the breaker): they are never sent; secrets are wiped. */
  async discard(name: string, op: Operator, reason: string): Promise<number> {
    const ext = this.d.holds?.[name];
    if (ext) {
      const n = await ext.discard();
      await this.d.audit.record(this.d.db, op, 'hold.discard', name, reason, { discarded: n });
      return n;
    }
    const heldReason = heldReasonFor(name);
    const now = this.d.clock.now();
    const n = await this.d.db.transaction().execute(async (trx) => {
      const discarded = await courierStore.discardHeld(trx, now, { reason: heldReason }, `discarded by ${op.name}: ${reason}`);
      if (!name.startsWith('blast:')) await trx.updateTable('breakers').set({ state: 'closed', reason, updated_at: now }).where('name', '=', name).execute();
      await this.d.incidents.close(trx, name.startsWith('blast:') ? name : `breaker:${name}`);
      await this.d.audit.record(trx, op, 'breaker.discard', name, reason, { discarded: discarded.length });
      return discarded.length;
    });
    this.invalidate();
    return n;
  }

  async breakers(): Promise<{ name: string; state: string; reason: string | null; trippedBy: string | null; trippedAt: string | null; held: number }[]> {
    const rows = await this.d.db.selectFrom('breakers').selectAll().orderBy('name').execute();
    const heldBy = await courierStore.heldByReason(this.d.db);
    const out = rows.map((r) => ({ name: r.name, state: r.state, reason: r.reason, trippedBy: r.tripped_by, trippedAt: r.tripped_at === null ? null : new Date(Number(r.tripped_at)).toISOString(), held: heldBy.get(`breaker:${r.name}`) ?? 0 }));
    // Holds that are not breakers (blast radius, kill switches) are listed too: nothing held is invisible.
    for (const [reason, n] of heldBy) {
      if (reason.startsWith('breaker:')) continue;
      const name = reason.startsWith('blast_radius:') ? `blast:${reason.slice('blast_radius:'.length)}` : reason;
      out.push({ name, state: 'holding', reason, trippedBy: null, trippedAt: null, held: n });
    }
    for (const [name, h] of Object.entries(this.d.holds ?? {})) {
      const n = await h.count();
      if (n > 0) out.push({ name, state: 'holding', reason: 'requests kept while the guard holds this flow', trippedBy: null, trippedAt: null, held: n });
    }
    return out;
  }

  async setKillSwitch(name: string, action: KillSwitch['action'] | null, op: Operator, reason: string): Promise<void> {
    if (!/^(type|flow):[a-z_]{1,40}$/.test(name)) throw new AppError('invalid_request', 'Kill switch names are type:<message type> or flow:<flow>.');
    const now = this.d.clock.now();
    await this.d.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('kill_switches').where('name', '=', name).execute();
      if (action) await trx.insertInto('kill_switches').values({ name, action, reason, set_by: op.name, set_at: now }).execute();
      await this.d.audit.record(trx, op, action ? `kill_switch.${action}` : 'kill_switch.resume', name, reason);
      // Resuming a paused type releases what it held.
      if (!action) await courierStore.releaseHeld(trx, now, { reason: `kill_switch:${name}` });
    });
    this.invalidate();
  }

  async flowSwitch(flow: string): Promise<KillSwitch['action'] | null> {
    return (await this.killSwitches()).get(`flow:${flow}`) ?? null;
  }

  async listKillSwitches(): Promise<KillSwitch[]> {
    const rows = await this.d.db.selectFrom('kill_switches').selectAll().orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, action: r.action as KillSwitch['action'], reason: r.reason, setBy: r.set_by, setAt: new Date(Number(r.set_at)).toISOString() }));
  }
}

/** The broadcast whose operator cause this is (`<operator id>:broadcast:<id>`, see broadcasts.ts), or null. */
export function broadcastOfCause(causeId: string): string | null {
  const m = /:broadcast:([A-Za-z0-9_-]{1,64})$/.exec(causeId);
  return m ? m[1]! : null;
}

function heldReasonFor(name: string): string {
  if (name.startsWith('blast:')) return `blast_radius:${name.slice(6)}`;
  if (name.startsWith('kill_switch:')) return name;
  return `breaker:${name}`;
}
