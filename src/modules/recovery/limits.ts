/**
 * Every number the recovery flow is held to, in one table. Per-source limits count requests by
 * client address (the guard may later add challenges in front of them); per-account limits count
 * mail and never look at addresses, so a botnet gets no more mail into one inbox than one client.
 */
import { DAY, HOUR, MINUTE } from '../../kernel/clock.js';
import type { LimitRule } from '../guard/index.js';
import type { SendPolicy } from './flow.js';

export interface RecoveryLimits {
  /** Reset requests per client address (all rules apply). */
  requestPerSource: readonly LimitRule[];
  /** Confirm attempts (token guesses) per client address. */
  confirmPerSource: readonly LimitRule[];
  /** Deny attempts per client address. */
  denyPerSource: readonly LimitRule[];
  /** Mail per account: growing gaps and a daily cap. */
  send: SendPolicy;
  /** Lifetime of a reset link (at most 30 minutes). */
  tokenTtlMs: number;
  /** How long after issue the "I didn't request this" link is still taken as a report. */
  denyWindowMs: number;
  /** Wrong second-factor codes per flow before its token dies. */
  otpFailuresPerFlow: number;
  /** Intake rows a worker claims at once, and how long a claim lasts before another may take it. */
  intakeBatch: number;
  intakeLeaseMs: number;
  /** A row that failed this many times is dropped (and logged) instead of blocking the queue. */
  intakeMaxAttempts: number;
  /** Flows (and quiet marks) older than this are deleted. */
  retentionMs: number;
}

export const RECOVERY_LIMITS: RecoveryLimits = Object.freeze({
  requestPerSource: [
    { windowMs: MINUTE, limit: 20 },
    { windowMs: HOUR, limit: 200 },
  ],
  confirmPerSource: [{ windowMs: MINUTE, limit: 10 }],
  denyPerSource: [{ windowMs: MINUTE, limit: 10 }],
  send: { gapsMs: [0, 2 * MINUTE, 10 * MINUTE, HOUR], maxSends: 3, windowMs: DAY },
  tokenTtlMs: 30 * MINUTE,
  denyWindowMs: 7 * DAY,
  otpFailuresPerFlow: 5,
  intakeBatch: 50,
  intakeLeaseMs: MINUTE,
  intakeMaxAttempts: 5,
  retentionMs: 30 * DAY,
});

/** The per-source key of a client address (one IPv4 address, one IPv6 /64): the guard's. */
export { sourceKey } from '../guard/index.js';
