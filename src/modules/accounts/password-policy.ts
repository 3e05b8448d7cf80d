/**
 * NIST SP 800-63B password rules: length only (8 to 1024 bytes; at least 64 characters are
 * always accepted), no composition rules, not the email itself, not a known-breached password,
 * and not built on a context-specific word (ASVS 5.0 6.1.2 and 6.2.11): the service's name, the
 * labels of its host name and of the person's own address. `floodgate2026!` or `ada.lovelace1`
 * are the first guesses of anyone targeting this service or this person.
 */
import { MAX_PASSWORD_BYTES } from './password-hasher.js';

export const MIN_PASSWORD_LENGTH = 8;

/** Port: a set of known-breached or common passwords (the MFA/hardening module provides one). */
export interface BreachedPasswords {
  isBreached(password: string): Promise<boolean>;
}

export const noBreachedList: BreachedPasswords = { isBreached: async () => false };

export type PasswordProblem = 'too_short' | 'too_long' | 'same_as_email' | 'context' | 'breached';

export const PASSWORD_PROBLEM_TEXT: Record<PasswordProblem, string> = {
  too_short: `Use at least ${MIN_PASSWORD_LENGTH} characters (15 or more is better).`,
  too_long: `Use at most ${MAX_PASSWORD_BYTES} bytes.`,
  same_as_email: 'The password must not be your email address.',
  context: 'The password is mostly your email address or the name of this service; choose another.',
  breached: 'This password appears in lists of breached or common passwords; choose another.',
};

/** Words always refused as the heart of a password, whatever the deployment. */
const SERVICE_WORDS = ['floodgate'];
/** Labels too common or too short to be context (top-level domains are dropped by position). */
const NOT_CONTEXT = new Set(['www', 'mail', 'login', 'auth', 'accounts', 'account']);
/** A word of context must have this many characters (shorter ones turn up in any passphrase). */
const MIN_WORD = 4;
/** What must be left, in letters, once the context words are taken out. */
const MIN_REST_LETTERS = 4;

/**
 * The context-specific words for one person: the service's name, the labels of the public
 * URL's host (not its top-level domain), and the parts of the person's address (local part split
 * at . _ + -, domain labels without the top-level one).
 */
export function contextWords(publicUrl: string, email: string | null): string[] {
  const words = new Set(SERVICE_WORDS);
  const labels = (host: string) => host.toLowerCase().split('.').slice(0, -1);
  let host = '';
  try { host = new URL(publicUrl).hostname; } catch { /* no host words */ }
  const hostLabels = host === 'localhost' ? [] : labels(host);
  const [local = '', domain = ''] = (email ?? '').toLowerCase().split('@');
  for (const w of [...hostLabels, ...local.split(/[._+-]/), ...labels(domain)]) {
    if (w.length >= MIN_WORD && !NOT_CONTEXT.has(w) && !/^\d+$/.test(w)) words.add(w);
  }
  return [...words];
}

/** Whether the password is a context word dressed up: take the words out, and fewer than 4 letters are left. */
export function isContextual(password: string, words: readonly string[]): boolean {
  let rest = password.normalize('NFKC').toLowerCase();
  let hit = false;
  for (const w of words) {
    if (rest.includes(w)) {
      rest = rest.split(w).join('');
      hit = true;
    }
  }
  return hit && rest.replace(/[^\p{L}]/gu, '').length < MIN_REST_LETTERS;
}

export async function checkPassword(password: string, email: string | null, breached: BreachedPasswords, context: readonly string[] = SERVICE_WORDS): Promise<PasswordProblem | null> {
  // Count code points, not UTF-16 units: "8 characters" means what a person typed.
  if ([...password].length < MIN_PASSWORD_LENGTH) return 'too_short';
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return 'too_long';
  if (email && password.trim().normalize('NFC').toLowerCase() === email) return 'same_as_email';
  if (isContextual(password, context)) return 'context';
  if (await breached.isBreached(password)) return 'breached';
  return null;
}
