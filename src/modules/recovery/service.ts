/**
 * Password recovery: request, decide (intake), confirm, deny. Invariants:
 * - a reset request is answered before anything looks at the account: the request path
 *   validates the address, counts the source, writes one intake row and answers, the same work
 *   for every address; the intake worker decides later, out of the request's time;
 * - per-account limits (reuse, growing gaps, daily cap, quiet after a deny) count mail, never
 *   client addresses; per-source limits count addresses, never accounts;
 * - the reset token is >= 128 bits from the CSPRNG; only its hash is stored; the raw token exists
 *   only sealed inside the queued mail;
 * - a token resets at most once: the consuming UPDATE (state = 'issued' and not expired) is the
 *   check, in the same transaction as the new password, the session revocation, the superseding
 *   of other tokens, the events and the password-changed notice;
 * - every decision for one account runs under that account's recovery row lock, so concurrent
 *   requests, confirms and denies for one account never interleave;
 * - every failure a token holder can cause is one generic `invalid_token`.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../../kernel/clock.js';
import type { Cause, RequestContext } from '../../kernel/context.js';
import { mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { isPlausibleEmail, normalizeEmail } from '../../kernel/email.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { DialectName } from '../../storage/database.js';
import type { Database, Db } from '../../storage/schema.js';
import type { AccountsService, PasswordHasher, UserRow } from '../accounts/index.js';
import type { RateLimiter } from '../guard/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import { inboxStore, type Outbox } from '../notifications/index.js';
import { describeDevice, type SecondFactor, type SessionsService } from '../sessions/index.js';
import { decideRequest, isLive, issue, MAX_TTL_MS, transition, type Effect, type RecoveryFlow, type RequestDecision } from './flow.js';
import { RECOVERY_LIMITS, sourceKey, type RecoveryLimits } from './limits.js';
import { linkStrategy, noResetPrompt, type RecoveryGuard, type RecoveryStrategy, type ResetPromptPolicy } from './ports.js';
import { recoveryStore as store, type IntakeRow } from './store.js';

export interface RecoveryDeps {
  db: Kysely<Database>;
  dialect: DialectName;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  accounts: AccountsService;
  sessions: SessionsService;
  events: SecurityEvents;
  outbox: Outbox;
  hasher: PasswordHasher;
  limiter: RateLimiter;
  secondFactor: SecondFactor;
  /** The only origin written into links (config.publicUrl). */
  publicUrl: string;
  /** Quiet period after "I didn't request this" (config.resetDenyQuietMs). */
  denyQuietMs: number;
  limits?: RecoveryLimits;
  strategy?: RecoveryStrategy;
  prompt?: ResetPromptPolicy;
  /** The guard in front of requests; default: this module's own per-source limits only. */
  guard?: RecoveryGuard;
}

/** What became of one intake row (also the `decision` label of floodgate_password_reset_requests_total). */
export type IntakeDecision = 'sent' | 'reused' | 'suppressed' | 'quiet' | 'unknown' | 'prompted' | 'held' | 'paused';

export interface ConfirmInput {
  token: string;
  password: string;
  otp?: string | undefined;
}

/** Thrown inside a transaction to roll it back; never leaves this module. */
class Rollback extends Error {
  constructor(readonly why: 'otp' | 'lost_claim' | 'verified') {
    super(why);
  }
}

interface EffectEnv {
  trx: Db;
  now: number;
  flow: RecoveryFlow;
  user: UserRow;
  ctx: RequestContext;
  cause: Cause;
  /** The account's other flows still marked issued (superseded by supersede_others). */
  others: RecoveryFlow[];
  supersedeReason: string;
  eventData: Record<string, unknown>;
  delivery?: { token: string; denyToken: string };
  passwordHash?: string;
}

export class RecoveryService {
  readonly limits: RecoveryLimits;
  readonly strategy: RecoveryStrategy;
  private readonly prompt: ResetPromptPolicy;
  private readonly guard: RecoveryGuard;
  private readonly intakeListeners: (() => void)[] = [];

  constructor(private readonly d: RecoveryDeps) {
    this.limits = d.limits ?? RECOVERY_LIMITS;
    this.strategy = d.strategy ?? linkStrategy;
    this.prompt = d.prompt ?? noResetPrompt;
    this.guard = d.guard ?? {
      enter: async (_email, ctx) => {
        await this.throttle('request', ctx);
        return { solved: false };
      },
      resolved: async () => {},
      route: async () => 'mail',
    };
    // The design caps reset links at 30 minutes: a longer TTL is a wiring bug, refused at boot.
    if (!(this.limits.tokenTtlMs > 0 && this.limits.tokenTtlMs <= MAX_TTL_MS)) throw new Error('reset tokens must expire within 30 minutes');
  }

  /** Called after each intake row is written (the intake worker wakes up). */
  onIntake(listener: () => void): void {
    this.intakeListeners.push(listener);
  }

  invalidToken(): AppError {
    return new AppError('invalid_token', 'This link is invalid, was already used, or has expired. Ask for a new one.');
  }

  /** Per-source limits: keyed by client address only, so known and unknown emails meet them alike. */
  private async throttle(kind: 'request' | 'confirm' | 'deny', ctx: RequestContext): Promise<void> {
    const rules = kind === 'request' ? this.limits.requestPerSource : kind === 'confirm' ? this.limits.confirmPerSource : this.limits.denyPerSource;
    const key = `recovery:${kind}:${sourceKey(ctx.ip)}`;
    let wait = 0;
    for (const rule of rules) {
      const r = await this.d.limiter.hit(key, rule);
      if (!r.allowed) wait = Math.max(wait, r.retryAfterMs);
    }
    if (wait > 0) {
      if (kind === 'request') this.d.metrics.resetRequests.inc({ decision: 'throttled' });
      throw new AppError('rate_limited', 'Too many requests from your network. Try again later.', { headers: { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) } });
    }
  }

  // --- request -------------------------------------------------------------------------------

  /**
   * Accept a reset request. Identical work for every address: no account lookup happens here
   * (that would put the account's existence into the answer's timing). `requesterUserId` is the
   * signed-in account making the request, if any (it may lift a quiet period for itself).
   */
  async request(email: string, ctx: RequestContext, requesterUserId: string | null = null, altcha?: unknown): Promise<void> {
    const { solved } = await this.guard.enter(email, ctx, altcha);
    const normalized = normalizeEmail(email);
    if (!isPlausibleEmail(normalized)) {
      throw new AppError('invalid_request', 'Enter a valid email address.', { extra: { errors: [{ field: 'email', message: 'Enter a valid email address.' }] } });
    }
    const now = this.d.clock.now();
    await store.insertIntake(this.d.db, {
      id: newId(now), email_normalized: normalized, ip: ctx.ip, request_id: ctx.requestId, user_agent: ctx.userAgent, requester_user_id: requesterUserId, at: now, solved: solved ? 1 : 0,
    });
    for (const l of this.intakeListeners) l();
  }

  /**
   * Decide one claimed intake row: resolve the account, apply the per-account policy and, when
   * mail is due, issue a flow; the flow, its mail, its event and the deletion of the intake row
   * commit together. Throws when the row could not be finished (the claim then lapses and the
   * row is tried again).
   */
  async decideIntake(row: IntakeRow, worker: string): Promise<IntakeDecision> {
    // Looked up outside the transaction: SQLite has one connection, which the transaction holds.
    const user = await this.d.accounts.findByEmail(row.email_normalized);
    const ctx: RequestContext = { requestId: row.request_id, ip: row.ip, userAgent: row.user_agent };
    if (row.held !== 2) await this.guard.resolved(user !== undefined, row.at);
    if (!user) {
      if (!(await store.deleteClaimedIntake(this.d.db, row.id, worker))) throw new Rollback('lost_claim');
      this.d.metrics.resetRequests.inc({ decision: 'unknown' });
      return 'unknown';
    }
    const cause: Cause = row.requester_user_id === user.id
      ? { kind: 'user', userId: user.id, requestId: row.request_id, ip: row.ip }
      : { kind: 'anonymous', requestId: row.request_id, ip: row.ip, ...(row.solved === 1 ? { proof: true } : {}) };
    // Released by an operator, or asked by the signed-in owner: no second judgement.
    const route = row.held === 2 || row.requester_user_id === user.id ? 'mail' : await this.guard.route({ userId: user.id, solved: row.solved === 1, at: row.at });
    if (route === 'hold') {
      if (!(await store.holdIntake(this.d.db, row.id, worker))) throw new Rollback('lost_claim');
      this.d.metrics.resetRequests.inc({ decision: 'held' });
      return 'held';
    }
    if (route === 'pause' || route === 'prompt') {
      await this.d.db.transaction().execute(async (trx) => {
        if (route === 'prompt') {
          // Secondary confirmation: the signed-in device is asked "was it you?" instead of a mail.
          await this.d.outbox.enqueue(trx, {
            type: 'reset_prompt', channel: 'inbox', userId: user.id, recipient: user.id, cause,
            data: { requestedAt: new Date(row.at).toISOString(), ip: row.ip }, idempotencyKey: `reset_prompt:${user.id}:${row.request_id}`,
          });
        }
        await this.d.events.record(trx, 'password.reset_requested', user.id, ctx, { decision: route === 'prompt' ? 'prompted' : 'paused' });
        if (!(await store.deleteClaimedIntake(trx, row.id, worker))) throw new Rollback('lost_claim');
      });
      const l = route === 'prompt' ? 'prompted' : 'paused';
      this.d.metrics.resetRequests.inc({ decision: l });
      return l;
    }
    const decision = await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.now();
      const account = await store.lockAccount(trx, user.id, now);
      const issued = await store.issuedFlows(trx, user.id);
      const live = issued.find((f) => isLive(f, now)) ?? null;
      const sends = await store.sendsSince(trx, user.id, now - this.limits.send.windowMs);
      const d = decideRequest(
        { live, sendsInWindow: sends.count, lastSentAt: sends.last, quietUntil: account.quietUntil, requesterIsOwner: row.requester_user_id === user.id },
        this.limits.send,
        now,
      );
      if (d.kind === 'issue') {
        const token = this.strategy.mint();
        const deny = mintToken();
        const prompt = await this.prompt.promptOnIssue(trx, user.id, { ip: row.ip, at: row.at });
        const { flow, effects } = issue(
          { id: newId(now), userId: user.id, strategy: this.strategy.name, ttlMs: this.limits.tokenTtlMs, token: { id: token.id, hash: token.hash }, denyToken: { id: deny.id, hash: deny.secretHash }, requestId: row.request_id, requestIp: row.ip, prompt },
          now,
        );
        await store.insertFlow(trx, flow, now);
        await this.apply(effects, {
          trx, now, flow, user, ctx, cause, others: issued, supersedeReason: 'newer_token',
          eventData: { decision: 'sent', flow: flow.id, strategy: flow.strategy, expiresAt: new Date(flow.expiresAt).toISOString() },
          delivery: { token: token.token, denyToken: deny.token },
        });
      } else {
        // Asked, answered like any other request, nothing sent: still evidence for the owner and for incidents.
        await this.d.events.record(trx, 'password.reset_requested', user.id, ctx, { decision: label(d), ...(d.kind === 'suppress' ? { reason: d.reason } : {}), ...(d.kind === 'reuse' ? { flow: d.flowId } : {}) });
      }
      if (!(await store.deleteClaimedIntake(trx, row.id, worker))) throw new Rollback('lost_claim');
      return d;
    });
    const l = label(decision);
    this.d.metrics.resetRequests.inc({ decision: l });
    return l;
  }

  // --- confirm -------------------------------------------------------------------------------

  /**
   * Whether a reset token would be accepted now, and whether a second factor will be asked for;
   * null when it would not. Read-only: the reset page calls it on GET, which mail scanners prefetch.
   */
  async peek(token: string): Promise<{ secondFactor: boolean } | null> {
    const parsed = this.strategy.parse(token);
    if (!parsed) return null;
    const flow = await store.findByTokenId(this.d.db, parsed.id);
    if (!flow || !this.strategy.matches(parsed.secret, flow.tokenHash) || !isLive(flow, this.d.clock.now())) return null;
    const user = await this.d.accounts.findById(flow.userId);
    return { secondFactor: !!user && (await this.secondFactorAsked(user)) };
  }

  /**
   * Whether a reset of this account asks for its second factor. Not while the address was never
   * confirmed: factors enrolled then were enrolled by whoever typed the address (a squatter's
   * authenticator must not lock the mailbox owner out), and this reset, proving the mailbox,
   * deletes them (AccountsService.proveMailbox).
   */
  private async secondFactorAsked(user: UserRow): Promise<boolean> {
    return user.email_verified_at !== null && (await this.d.secondFactor.required(user.id));
  }

  /**
   * Set a new password with a reset token. Throws invalid_token (bad, used, expired, superseded,
   * denied), weak_password, mfa_required (token not consumed), invalid_credentials (wrong code;
   * token not consumed), rate_limited.
   */
  async confirm(input: ConfirmInput, ctx: RequestContext): Promise<void> {
    await this.throttle('confirm', ctx);
    const parsed = this.strategy.parse(input.token);
    if (!parsed) throw this.invalidToken();
    const found = await store.findByTokenId(this.d.db, parsed.id);
    if (!found || !this.strategy.matches(parsed.secret, found.tokenHash) || !isLive(found, this.d.clock.now())) throw this.invalidToken();
    const user = await this.d.accounts.findById(found.userId);
    if (!user) throw this.invalidToken();
    await this.d.accounts.validateNew(user.email, input.password);
    const mfa = await this.secondFactorAsked(user);
    const otp = typeof input.otp === 'string' && input.otp.trim() ? input.otp.trim() : null;
    // Asked before anything is consumed, so the person can come back with the code and the same link.
    if (mfa && !otp) throw new AppError('mfa_required', 'This account uses two-step verification: repeat the request with `otp` (a code from your authenticator app or a recovery code).');
    // argon2id outside the transaction: the row lock is held for milliseconds, not a hash.
    const passwordHash = await this.d.hasher.hash(input.password);
    let outcome: 'ok' | 'invalid';
    try {
      outcome = await this.d.db.transaction().execute(async (trx) => {
        const now = this.d.clock.now();
        await store.lockAccount(trx, user.id, now);
        const flow = await store.findById(trx, found.id);
        if (!flow) return 'invalid' as const;
        const t = transition(flow, { type: 'consume' }, now);
        if (!t.ok) return 'invalid' as const;
        // The compare-and-set that makes the token single use.
        if (!(await store.saveTransition(trx, flow, t.flow, now, { notExpiredAt: now }))) return 'invalid' as const;
        let method: string | null = null;
        if (mfa) {
          method = await this.d.secondFactor.verify(trx, user.id, otp!, ctx);
          if (!method) throw new Rollback('otp');
        }
        const others = (await store.issuedFlows(trx, user.id)).filter((f) => f.id !== flow.id);
        const cause: Cause = { kind: 'user', userId: user.id, requestId: ctx.requestId, ip: ctx.ip };
        await this.apply(t.effects, {
          trx, now, flow: t.flow, user, ctx, cause, others, supersedeReason: 'password_changed', passwordHash,
          eventData: { via: 'reset', flow: flow.id, ...(method ? { secondFactor: method } : {}) },
        });
        if (user.locked_at !== null) await this.d.events.record(trx, 'account.unlocked', user.id, ctx, { via: 'reset' });
        // A completed reset proves the mailbox: an address never confirmed is now, and what was
        // set up on the account before (a squatter's factors, sessions, devices) goes with it.
        const firstProof = await this.d.accounts.proveMailbox(trx, user.id, ctx, 'reset');
        // Confirmed meanwhile by its link (and maybe given a factor since): not this reset's to skip the factor.
        if (!mfa && user.email_verified_at === null && !firstProof) throw new Rollback('verified');
        return 'ok' as const;
      });
    } catch (e) {
      if (e instanceof Rollback && e.why === 'otp') {
        await this.otpFailed(found.id, user, ctx);
        throw new AppError('invalid_credentials', 'The one-time code is incorrect or was already used.');
      }
      // Nothing was written: once more, now that the account reads as confirmed (it cannot turn back).
      if (e instanceof Rollback && e.why === 'verified') return this.confirm(input, ctx);
      throw e;
    }
    if (outcome !== 'ok') throw this.invalidToken();
  }

  private async otpFailed(flowId: string, user: UserRow, ctx: RequestContext): Promise<void> {
    await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.now();
      await store.lockAccount(trx, user.id, now);
      const flow = await store.findById(trx, flowId);
      if (!flow) return;
      const t = transition(flow, { type: 'otp_failed', maxFailures: this.limits.otpFailuresPerFlow }, now);
      if (!t.ok || !(await store.saveTransition(trx, flow, t.flow, now))) return;
      await this.apply(t.effects, {
        trx, now, flow: t.flow, user, ctx, cause: { kind: 'anonymous', requestId: ctx.requestId, ip: ctx.ip }, others: [], supersedeReason: 'otp_failures',
        eventData: { flow: flow.id, failures: t.flow.otpFailures, tokenKilled: t.flow.state !== 'issued' },
      });
    });
  }

  /**
   * The password changed (AccountsService.setPassword's hook): every live reset link of the account
   * dies, in the change's transaction and under the account's row lock. Returns how many.
   */
  async supersedeIssued(db: Db, userId: string, reason: string): Promise<number> {
    const now = this.d.clock.now();
    await store.lockAccount(db, userId, now);
    let n = 0;
    for (const f of await store.issuedFlows(db, userId)) {
      const t = transition(f, { type: 'supersede', reason }, now);
      if (t.ok && t.flow !== f && (await store.saveTransition(db, f, t.flow, now)) && t.flow.state === 'superseded') n++;
    }
    return n;
  }

  // --- deny ----------------------------------------------------------------------------------

  private async findDeny(token: string): Promise<RecoveryFlow | null> {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const flow = await store.findByDenyTokenId(this.d.db, parsed.id);
    return flow && secretMatches(parsed.secret, flow.denyTokenHash) ? flow : null;
  }

  /** Whether a deny token would be accepted now. Read-only (GET of the deny link changes nothing). */
  async peekDeny(token: string): Promise<boolean> {
    const flow = await this.findDeny(token);
    return !!flow && transition(flow, { type: 'deny', denyWindowMs: this.limits.denyWindowMs }, this.d.clock.now()).ok;
  }

  /**
   * "I didn't request this": kill the flow (and any other live one of the account), record the
   * report, and quiet reset mail to the account for the configured period.
   */
  async deny(token: string, ctx: RequestContext): Promise<void> {
    await this.throttle('deny', ctx);
    const found = await this.findDeny(token);
    if (!found) throw this.invalidToken();
    const user = await this.d.accounts.findById(found.userId);
    if (!user) throw this.invalidToken();
    const ok = await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.now();
      await store.lockAccount(trx, user.id, now);
      const flow = await store.findById(trx, found.id);
      if (!flow) return false;
      const stateBefore = flow.state;
      const t = transition(flow, { type: 'deny', denyWindowMs: this.limits.denyWindowMs }, now);
      if (!t.ok) return false;
      if (t.flow !== flow && !(await store.saveTransition(trx, flow, t.flow, now))) return false;
      const others = (await store.issuedFlows(trx, user.id)).filter((f) => f.id !== flow.id);
      await this.apply(t.effects, {
        trx, now, flow: t.flow, user, ctx, cause: { kind: 'anonymous', requestId: ctx.requestId, ip: ctx.ip }, others, supersedeReason: 'denied',
        eventData: {
          report: 'not_requested', flow: flow.id, stateBefore: stateBefore === 'issued' && now >= flow.expiresAt ? 'expired' : stateBefore,
          requestedAt: new Date(flow.issuedAt).toISOString(), requestedFrom: flow.requestIp, quietUntil: new Date(now + this.d.denyQuietMs).toISOString(),
        },
      });
      return true;
    });
    if (!ok) throw this.invalidToken();
  }

  // --- effects -------------------------------------------------------------------------------

  private async apply(effects: readonly Effect[], env: EffectEnv): Promise<void> {
    const { trx, now, flow, user, ctx } = env;
    for (const e of effects) {
      switch (e.kind) {
        case 'supersede_others':
          for (const other of env.others) {
            if (other.id === flow.id) continue;
            const t = transition(other, { type: 'supersede', reason: env.supersedeReason }, now);
            if (t.ok && t.flow !== other) await store.saveTransition(trx, other, t.flow, now);
          }
          break;
        case 'deliver_reset':
          if (!env.delivery) throw new Error('deliver_reset without a minted token');
          await this.d.outbox.enqueue(trx, this.strategy.delivery({ flow, email: user.email, token: env.delivery.token, denyToken: env.delivery.denyToken, publicUrl: this.d.publicUrl, cause: env.cause }));
          break;
        case 'prompt_inbox':
          await this.d.outbox.enqueue(trx, {
            type: 'reset_prompt', channel: 'inbox', userId: user.id, recipient: user.id, cause: env.cause,
            data: { requestedAt: new Date(flow.issuedAt).toISOString(), ...(flow.requestIp ? { ip: flow.requestIp } : {}) },
            idempotencyKey: `reset_prompt:${flow.id}`,
          });
          break;
        case 'set_password':
          if (!env.passwordHash) throw new Error('set_password without a hash');
          await this.d.accounts.setPassword(trx, user.id, env.passwordHash);
          break;
        case 'revoke_sessions': {
          const n = await this.d.sessions.revokeAll(trx, user.id, 'password_reset');
          env.eventData = { ...env.eventData, sessionsRevoked: n };
          break;
        }
        case 'notify_password_changed': {
          const device = ctx.userAgent ? describeDevice(ctx.userAgent) : null;
          await this.d.outbox.enqueue(trx, {
            type: 'password_changed', channel: 'email', userId: user.id, recipient: user.email, cause: env.cause,
            data: { email: user.email, at: new Date(now).toISOString(), ...(device ? { device } : {}), ...(ctx.ip ? { ip: ctx.ip } : {}) },
            idempotencyKey: `password_changed:${flow.id}`,
          });
          break;
        }
        case 'quiet_account':
          await store.quietUntil(trx, user.id, now + this.d.denyQuietMs, now);
          break;
        case 'record':
          await this.d.events.record(trx, e.event, user.id, ctx, env.eventData);
          break;
        default: {
          const never: never = e;
          throw new Error(`unknown recovery effect ${JSON.stringify(never)}`);
        }
      }
    }
  }

  /**
   * The owner's answer to one in-app "was it you?" prompt (`promptId`: the id of its inbox entry,
   * as GET /api/v1/me/notifications lists it). The one rule for the page and the API: the prompt
   * must be the account's own, still unanswered, and it is answered once; taking it (marking the
   * inbox entry read) and acting on the answer commit together, under the account's recovery row
   * lock. Yes: the reset link is mailed now (the request is the owner's, so the guard does not
   * judge it again). No: handled like the deny link — live links die, a report is recorded and
   * reset mail stays quiet for a while. Throws not_found (no prompt of this account has that id:
   * unknown, or another account's) or conflict (already answered); either way nothing changes.
   */
  async answerPrompt(userId: string, promptId: string, answer: 'yes' | 'no', ctx: RequestContext): Promise<void> {
    const user = await this.d.accounts.findById(userId);
    if (!user) throw new AppError('unauthenticated');
    await this.d.db.transaction().execute(async (trx) => {
      const now = this.d.clock.now();
      await store.lockAccount(trx, userId, now);
      // A session alone must not be able to kill the owner's links at will: one answer per prompt
      // that was really put to this account, never an answer without a prompt.
      const taken = await inboxStore.takeUnread(trx, userId, promptId, 'reset_prompt', now);
      if (taken === 'none') throw new AppError('not_found', 'No reset prompt of yours has this id.');
      if (taken === 'read') throw new AppError('conflict', 'This reset prompt was already answered.');
      if (answer === 'yes') {
        await this.insertOwnerIntake(trx, user, ctx, now);
        return;
      }
      const issued = await store.issuedFlows(trx, userId);
      for (const f of issued) {
        const t = transition(f, { type: 'supersede', reason: 'denied_in_app' }, now);
        if (t.ok && t.flow !== f) await store.saveTransition(trx, f, t.flow, now);
      }
      await store.quietUntil(trx, userId, now + this.d.denyQuietMs, now);
      await this.d.events.record(trx, 'password.reset_denied', userId, ctx, {
        via: 'in_app_prompt', prompt: promptId, killed: issued.length, quietUntil: new Date(now + this.d.denyQuietMs).toISOString(),
      });
    });
    if (answer === 'yes') for (const l of this.intakeListeners) l();
  }

  /**
   * A reset asked by the account's owner, already proven by something other than the session
   * (a single-use "this wasn't me" link from their own mailbox): mailed like an answered prompt's
   * "yes", without the reset guard's judgement.
   */
  async requestAsOwner(userId: string, ctx: RequestContext): Promise<void> {
    const user = await this.d.accounts.findById(userId);
    if (!user) throw new AppError('unauthenticated');
    await this.insertOwnerIntake(this.d.db, user, ctx, this.d.clock.now());
    for (const l of this.intakeListeners) l();
  }

  /** An intake row already released (held = 2) and asked by the owner: decided as 'mail', subject to the per-account limits. */
  private async insertOwnerIntake(db: Db, user: UserRow, ctx: RequestContext, now: number): Promise<void> {
    await store.insertIntake(db, {
      id: newId(now), email_normalized: user.email_normalized, ip: ctx.ip, request_id: ctx.requestId, user_agent: ctx.userAgent,
      requester_user_id: user.id, at: now, solved: 1, held: 2,
    });
  }

  /** Held requests (guard in hold): how many, release them to be decided, or discard them. */
  heldCount(): Promise<number> {
    return store.heldIntakeCount(this.d.db);
  }
  async releaseHeld(): Promise<number> {
    const n = await store.releaseHeldIntake(this.d.db);
    for (const l of this.intakeListeners) l();
    return n;
  }
  discardHeld(): Promise<number> {
    return store.discardHeldIntake(this.d.db);
  }

  /** Housekeeping: drop flows and quiet marks older than the retention period. */
  async prune(): Promise<number> {
    const now = this.d.clock.now();
    return store.prune(this.d.db, now - this.limits.retentionMs, now);
  }

  isLostClaim(e: unknown): boolean {
    return e instanceof Rollback && e.why === 'lost_claim';
  }
}

function label(d: RequestDecision): IntakeDecision {
  switch (d.kind) {
    case 'issue':
      return 'sent';
    case 'reuse':
      return 'reused';
    case 'suppress':
      return 'suppressed';
    case 'quiet':
      return 'quiet';
  }
}
