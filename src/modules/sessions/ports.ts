import type { Db } from '../../storage/schema.js';
import type { RequestContext } from '../../kernel/context.js';

/**
 * Port: per-account and per-source sign-in throttling (the guard implements it). Keys never
 * reveal whether an account exists: the account key is the normalised email as typed.
 */
export interface SignInThrottle {
  /** null: go ahead; a number: seconds to wait (answered 429 with Retry-After). */
  check(emailKey: string, ctx: RequestContext, opts?: ThrottleOptions): Promise<number | null>;
  failed(emailKey: string, ctx: RequestContext, opts?: ThrottleOptions): Promise<{ lockAccount: boolean }>;
  succeeded(emailKey: string, ctx: RequestContext, opts?: ThrottleOptions): Promise<void>;
  /** Whether a device known for the account still has failure budget left (then it passes `device`). */
  deviceTrusted(deviceId: string): Promise<boolean>;
}

export interface ThrottleOptions {
  /**
   * The account's last password change (ms), 0 or absent for an unknown email: failures before
   * it do not count (a reset or a change starts a fresh count).
   */
  since?: number;
  /**
   * A device cookie known for the account, with budget left (`deviceTrusted`): its attempts are
   * counted against that device alone, not subject to the account's delays or lock.
   */
  device?: string | null;
}

export const noThrottle: SignInThrottle = {
  check: async () => null,
  failed: async () => ({ lockAccount: false }),
  succeeded: async () => {},
  deviceTrusted: async () => true,
};

/** Port: the second factor (the MFA module implements it). */
export interface SecondFactor {
  /** Whether the account must present a second factor. */
  required(userId: string): Promise<boolean>;
  /** Verify an OTP (TOTP or recovery code); single use. Returns the method used, or null. */
  verify(db: Db, userId: string, otp: string, ctx: RequestContext): Promise<'totp' | 'recovery_code' | null>;
}

export const noSecondFactor: SecondFactor = { required: async () => false, verify: async () => null };

/** Port: what happens after a successful sign-in inside its transaction (new-device notice...). */
export interface SignInObserver {
  /** `newDevice`: the browser presented no device cookie known for the account; `device` describes it for people. */
  signedIn(db: Db, userId: string, email: string, session: { id: string; device: string; newDevice: boolean }, ctx: RequestContext): Promise<void>;
  /** The right password came with a wrong second-factor code: whoever sent it knows the password. */
  secondFactorFailed?(db: Db, userId: string, email: string, device: string, ctx: RequestContext): Promise<void>;
}

/**
 * Port: starting a password reset for an account's owner (the recovery module implements it).
 * Used by "this wasn't me" on a new-sign-in notice.
 */
export interface PasswordResets {
  /** A request made as the signed-in owner (lifts a quiet period); the reset guard may refuse it (429, 428). */
  request(email: string, ctx: RequestContext, requesterUserId: string | null): Promise<void>;
  /** The owner's own request, already proven: mailed without the reset guard's judgement. */
  requestAsOwner(userId: string, ctx: RequestContext): Promise<void>;
}
