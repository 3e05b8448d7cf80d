/**
 * NIST SP 800-63B password rules: length only (8 to 1024 bytes; at least 64 characters are
 * always accepted), no composition rules, not the email itself, not a known-breached password.
 */
import { MAX_PASSWORD_BYTES } from './password-hasher.js';

export const MIN_PASSWORD_LENGTH = 8;

/** Port: a set of known-breached or common passwords (the MFA/hardening module provides one). */
export interface BreachedPasswords {
  isBreached(password: string): Promise<boolean>;
}

export const noBreachedList: BreachedPasswords = { isBreached: async () => false };

export type PasswordProblem = 'too_short' | 'too_long' | 'same_as_email' | 'breached';

export const PASSWORD_PROBLEM_TEXT: Record<PasswordProblem, string> = {
  too_short: `Use at least ${MIN_PASSWORD_LENGTH} characters (15 or more is better).`,
  too_long: `Use at most ${MAX_PASSWORD_BYTES} bytes.`,
  same_as_email: 'The password must not be your email address.',
  breached: 'This password appears in lists of breached or common passwords; choose another.',
};

export async function checkPassword(password: string, email: string | null, breached: BreachedPasswords): Promise<PasswordProblem | null> {
  // Count code points, not UTF-16 units: "8 characters" means what a person typed.
  if ([...password].length < MIN_PASSWORD_LENGTH) return 'too_short';
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return 'too_long';
  if (email && password.trim().normalize('NFC').toLowerCase() === email) return 'same_as_email';
  if (await breached.isBreached(password)) return 'breached';
  return null;
}
