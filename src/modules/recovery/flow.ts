/**
 * The password-recovery flow as a pure state machine (no I/O, no clock: `now` is passed in).
 *
 *     issued --consume--> used
 *       |  \--deny------> denied          (the "I didn't request this" link)
 *       |  \--supersede-> superseded      (a newer token, or the password changed)
 *       \----expire-----> expired         (30 minutes, or too many wrong one-time codes)
 *
 * Invariants:
 * - only an `issued` flow whose expiresAt lies in the future can be consumed: that is the one
 *   place a password can change through recovery;
 * - an issued flow past expiresAt behaves as `expired` whether or not the row says so yet
 *   (`effectiveState`); rows are brought up to date lazily;
 * - a deny is a report as much as a kill: it is accepted for a while after the token stopped
 *   working (expired, superseded, even used) because "I didn't request this" is evidence;
 * - every state is handled explicitly; a state this code does not know is an error, never a
 *   silent pass (a row written by a newer version, or corrupted).
 */
import { MINUTE } from '../../kernel/clock.js';

export const FLOW_STATES = ['issued', 'used', 'denied', 'superseded', 'expired'] as const;
export type FlowState = (typeof FLOW_STATES)[number];

/**
 * How the secret reaches the person. 'link' mails a link carrying a 256-bit token. A 6-digit
 * 'code' strategy can join later: it needs a keyed hash (HMAC, not sha256: 10^6 codes are
 * brute-forced offline in no time) and a per-flow attempt limit, which `otpFailures` already
 * models for the second factor.
 */
export type FlowStrategy = 'link';

export const MAX_TTL_MS = 30 * MINUTE;

export interface RecoveryFlow {
  id: string;
  userId: string;
  strategy: FlowStrategy;
  state: FlowState;
  issuedAt: number;
  expiresAt: number;
  tokenId: string;
  tokenHash: string;
  /** A separate token for the "I didn't request this" link: it can deny, never reset. */
  denyTokenId: string;
  denyTokenHash: string;
  /** Mails that carried this flow's secret, and when the last one was queued. */
  sendCount: number;
  lastSentAt: number | null;
  /** Wrong second-factor codes presented with this flow's token. */
  otpFailures: number;
  endedAt: number | null;
  endReason: string | null;
  requestId: string | null;
  requestIp: string | null;
}

/** What the service does after a transition, inside the same transaction. */
export type Effect =
  | { kind: 'deliver_reset' }
  | { kind: 'prompt_inbox' }
  | { kind: 'set_password' }
  | { kind: 'revoke_sessions' }
  | { kind: 'supersede_others' }
  | { kind: 'notify_password_changed' }
  | { kind: 'quiet_account' }
  | { kind: 'record'; event: 'password.reset_requested' | 'password.reset_completed' | 'password.changed' | 'password.reset_denied' | 'password.reset_mfa_failed' };

export type FlowEvent =
  | { type: 'consume' }
  | { type: 'deny'; denyWindowMs: number }
  | { type: 'supersede'; reason: string }
  | { type: 'expire'; reason: string }
  | { type: 'otp_failed'; maxFailures: number };

export type Rejection = 'not_live' | 'expired' | 'too_late';

export type TransitionResult = { ok: true; flow: RecoveryFlow; effects: readonly Effect[] } | { ok: false; reason: Rejection };

export class UnknownFlowStateError extends Error {
  constructor(readonly state: string) {
    super(`recovery flow in unknown state ${JSON.stringify(String(state).slice(0, 40))}`);
    this.name = 'UnknownFlowStateError';
  }
}

export interface IssueInput {
  id: string;
  userId: string;
  strategy: FlowStrategy;
  ttlMs: number;
  token: { id: string; hash: string };
  denyToken: { id: string; hash: string };
  requestId: string | null;
  requestIp: string | null;
  /** Also put a prompt in the account's in-app inbox (secondary confirmation). */
  prompt: boolean;
}

/** A new flow, and what issuing it entails. */
export function issue(input: IssueInput, now: number): { flow: RecoveryFlow; effects: Effect[] } {
  // The design caps reset tokens at 30 minutes; a longer TTL is a configuration bug, not a choice.
  if (!(input.ttlMs > 0 && input.ttlMs <= MAX_TTL_MS)) throw new RangeError(`reset token TTL must be within (0, ${MAX_TTL_MS}] ms`);
  const flow: RecoveryFlow = {
    id: input.id,
    userId: input.userId,
    strategy: input.strategy,
    state: 'issued',
    issuedAt: now,
    expiresAt: now + input.ttlMs,
    tokenId: input.token.id,
    tokenHash: input.token.hash,
    denyTokenId: input.denyToken.id,
    denyTokenHash: input.denyToken.hash,
    sendCount: 1,
    lastSentAt: now,
    otpFailures: 0,
    endedAt: null,
    endReason: null,
    requestId: input.requestId,
    requestIp: input.requestIp,
  };
  const effects: Effect[] = [{ kind: 'supersede_others' }, { kind: 'deliver_reset' }];
  if (input.prompt) effects.push({ kind: 'prompt_inbox' });
  effects.push({ kind: 'record', event: 'password.reset_requested' });
  return { flow, effects };
}

/** The state as it stands at `now`: an issued flow past its expiry is expired. */
export function effectiveState(flow: RecoveryFlow, now: number): FlowState {
  switch (flow.state) {
    case 'issued':
      return now >= flow.expiresAt ? 'expired' : 'issued';
    case 'used':
    case 'denied':
    case 'superseded':
    case 'expired':
      return flow.state;
    default:
      throw new UnknownFlowStateError(flow.state);
  }
}

/** Whether the flow's token can still reset the password at `now`. */
export function isLive(flow: RecoveryFlow, now: number): boolean {
  return effectiveState(flow, now) === 'issued';
}

function end(flow: RecoveryFlow, state: FlowState, now: number, reason: string): RecoveryFlow {
  return { ...flow, state, endedAt: now, endReason: reason };
}

// A denied request takes every other outstanding token of the account with it (a newer one is
// just as unwanted), quiets reset mail for a while, and is recorded as a report.
const DENY_EFFECTS: readonly Effect[] = [{ kind: 'supersede_others' }, { kind: 'quiet_account' }, { kind: 'record', event: 'password.reset_denied' }];

export function transition(flow: RecoveryFlow, event: FlowEvent, now: number): TransitionResult {
  const state = effectiveState(flow, now);
  switch (event.type) {
    case 'consume':
      switch (state) {
        case 'issued':
          return {
            ok: true,
            flow: end(flow, 'used', now, 'consumed'),
            effects: [
              { kind: 'set_password' },
              { kind: 'revoke_sessions' },
              // The password changed: every other outstanding token must die with the old password.
              { kind: 'supersede_others' },
              { kind: 'record', event: 'password.reset_completed' },
              { kind: 'record', event: 'password.changed' },
              { kind: 'notify_password_changed' },
            ],
          };
        case 'expired':
          return { ok: false, reason: 'expired' };
        case 'used':
        case 'denied':
        case 'superseded':
          return { ok: false, reason: 'not_live' };
        default:
          throw new UnknownFlowStateError(state);
      }

    case 'deny': {
      // A report long after issue is too stale to act on (and keeps old rows prunable).
      const inWindow = now < flow.issuedAt + event.denyWindowMs;
      switch (state) {
        case 'issued':
        case 'expired':
        case 'superseded':
          if (!inWindow) return { ok: false, reason: 'too_late' };
          return { ok: true, flow: end(flow, 'denied', now, 'reported'), effects: DENY_EFFECTS };
        case 'used':
          // Too late to stop, not too late to report: someone with access to the mailbox reset it.
          if (!inWindow) return { ok: false, reason: 'too_late' };
          return { ok: true, flow, effects: DENY_EFFECTS };
        case 'denied':
          // A second click on the same link: nothing new to record.
          return { ok: true, flow, effects: [] };
        default:
          throw new UnknownFlowStateError(state);
      }
    }

    case 'supersede':
      switch (state) {
        case 'issued':
          return { ok: true, flow: end(flow, 'superseded', now, event.reason), effects: [] };
        case 'expired':
          // Record what actually ended it.
          return { ok: true, flow: flow.state === 'expired' ? flow : end(flow, 'expired', flow.expiresAt, 'ttl'), effects: [] };
        case 'used':
        case 'denied':
        case 'superseded':
          return { ok: false, reason: 'not_live' };
        default:
          throw new UnknownFlowStateError(state);
      }

    case 'expire':
      switch (state) {
        case 'issued':
          return { ok: true, flow: end(flow, 'expired', now, event.reason), effects: [] };
        case 'expired':
          return { ok: true, flow: flow.state === 'expired' ? flow : end(flow, 'expired', flow.expiresAt, 'ttl'), effects: [] };
        case 'used':
        case 'denied':
        case 'superseded':
          return { ok: false, reason: 'not_live' };
        default:
          throw new UnknownFlowStateError(state);
      }

    case 'otp_failed':
      switch (state) {
        case 'issued': {
          const failures = flow.otpFailures + 1;
          const record: Effect = { kind: 'record', event: 'password.reset_mfa_failed' };
          // Whoever holds the mailbox but not the second factor gets a few tries, not 10^6.
          if (failures >= event.maxFailures) return { ok: true, flow: { ...end(flow, 'expired', now, 'otp_failures'), otpFailures: failures }, effects: [record] };
          return { ok: true, flow: { ...flow, otpFailures: failures }, effects: [record] };
        }
        case 'expired':
          return { ok: false, reason: 'expired' };
        case 'used':
        case 'denied':
        case 'superseded':
          return { ok: false, reason: 'not_live' };
        default:
          throw new UnknownFlowStateError(state);
      }

    default: {
      const never: never = event;
      throw new Error(`unknown recovery flow event ${JSON.stringify(never)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per-account request policy (pure): whether a reset request for a known account sends mail.

export interface SendPolicy {
  /** Minimum gap before the n-th send in the window (index n-1; the last entry repeats). */
  gapsMs: readonly number[];
  /** Sends per account per `windowMs` at most. */
  maxSends: number;
  windowMs: number;
}

export interface AccountRecoveryView {
  /** The newest live flow of the account, if any. */
  live: RecoveryFlow | null;
  /** Sends to the account within the policy window. */
  sendsInWindow: number;
  /** Time of the latest send within the window (null when none). */
  lastSentAt: number | null;
  /** Reset mail is quiet until then (after "I didn't request this"). */
  quietUntil: number | null;
  /** The request came from a signed-in session of this very account. */
  requesterIsOwner: boolean;
}

export type RequestDecision =
  | { kind: 'issue' }
  | { kind: 'reuse'; flowId: string }
  | { kind: 'suppress'; reason: 'gap' | 'daily_cap' }
  | { kind: 'quiet' };

export function decideRequest(view: AccountRecoveryView, policy: SendPolicy, now: number): RequestDecision {
  // The owner said "I didn't request this": stay silent, unless the owner, signed in, asks.
  if (view.quietUntil !== null && now < view.quietUntil && !view.requesterIsOwner) return { kind: 'quiet' };
  // A hard daily cap: however the requests arrive, one inbox gets a few mails a day at most.
  if (view.sendsInWindow >= policy.maxSends) return { kind: 'suppress', reason: 'daily_cap' };
  const gap = policy.gapsMs.length ? policy.gapsMs[Math.min(view.sendsInWindow, policy.gapsMs.length - 1)]! : 0;
  if (view.lastSentAt !== null && now - view.lastSentAt < gap) {
    // Reuse, don't re-mail: the link already sent still works; another mail now helps nobody.
    return view.live && isLive(view.live, now) ? { kind: 'reuse', flowId: view.live.id } : { kind: 'suppress', reason: 'gap' };
  }
  return { kind: 'issue' };
}
