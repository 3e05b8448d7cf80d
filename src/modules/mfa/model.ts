/** Pure types and numbers of the MFA module (no I/O). */
import { MINUTE } from '../../kernel/clock.js';
import type { LimitRule } from '../guard/index.js';

/** RFC 6238 parameters every authenticator app understands (Google Authenticator ignores others). */
export const TOTP = { algorithm: 'SHA1', digits: 6, periodS: 30, secretBytes: 20, issuer: 'Floodgate' } as const;
/** Accepted clock drift, in time steps either side (RFC 6238 §5.2 recommends at most one). */
export const TOTP_DRIFT_STEPS = 1;
/** A started enrolment that is not confirmed within this time must be started again. */
export const TOTP_PENDING_TTL_MS = 15 * MINUTE;

export const RECOVERY_CODE_COUNT = 10;

/** Wrong second-factor codes per account (TOTP or recovery code, at sign-in, reset or enrolment). */
export const OTP_FAILURE_RULE: LimitRule = { windowMs: 10 * MINUTE, limit: 5 };
/** Wrong passwords given to confirm a sensitive change, per account. */
export const REAUTH_FAILURE_RULE: LimitRule = { windowMs: 10 * MINUTE, limit: 5 };
/**
 * Passkey sign-in ceremonies started, and failed ones: per source (an IPv4 address, or an IPv6
 * /64, which one client holds whole) and per network (/24, /56), keyed like the guard's limits.
 */
export const PASSKEY_OPTIONS_RULE: LimitRule = { windowMs: MINUTE, limit: 30 };
export const PASSKEY_FAILURE_RULE: LimitRule = { windowMs: 10 * MINUTE, limit: 20 };
export const PASSKEY_OPTIONS_NETWORK_RULE: LimitRule = { windowMs: MINUTE, limit: 300 };
export const PASSKEY_FAILURE_NETWORK_RULE: LimitRule = { windowMs: 10 * MINUTE, limit: 200 };

/** "Recent authentication" for factor and password changes (OWASP ASVS 5.0 V6.3/V7.5). */
export const RECENT_AUTH_MS = 10 * MINUTE;

export const CHALLENGE_TTL_MS = 5 * MINUTE;
export const MAX_PASSKEYS_PER_ACCOUNT = 20;
export const PASSKEY_NAME_MAX = 64;

/** The signed-in caller as the HTTP layer knows it (kept free of http/ types). */
export interface Actor {
  userId: string;
  sessionId: string;
  /** When the session was established (sign-in); the base of the recent-authentication rule. */
  sessionCreatedAt: number;
}

export type MfaChange =
  | 'totp_enrolled'
  | 'totp_removed'
  | 'passkey_added'
  | 'passkey_removed'
  | 'recovery_code_used'
  | 'recovery_codes_regenerated';

export interface MfaStatus {
  /** Whether sign-in with a password asks for a second factor. */
  enabled: boolean;
  totp: { enabled: boolean; pending: boolean; confirmedAt: string | null };
  passkeys: number;
  recoveryCodesLeft: number;
}

export interface PasskeyView {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  deviceType: string;
  backedUp: boolean;
  transports: string[];
}
