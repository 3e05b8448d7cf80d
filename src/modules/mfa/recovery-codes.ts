/**
 * Recovery codes (NIST SP 800-63B "look-up secrets"). Invariants:
 * - 10 codes of 24 base32 characters (120 bits) each, from the CSPRNG, shown once. ASVS 5.0
 *   6.5.2 lets a look-up secret of at least 112 bits be stored under a plain approved hash (below
 *   that it asks for a password hash with a random salt): 120 bits cannot be searched offline;
 * - at rest only SHA-256(userId:code); the user id as salt keeps equal codes of two accounts
 *   apart. The hash takes no server key on purpose: recovery codes are the way back in when
 *   FLOODGATE_SECRET_KEY (which seals the TOTP seeds) is lost, so they must not depend on it;
 * - codes made before 2026-12 have 16 characters (80 bits); they keep working (same hash) until
 *   their owner makes new ones, and are never issued again;
 * - each code works once: the UPDATE that marks it used is the check.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../kernel/crypto.js';
import { RECOVERY_CODE_COUNT } from './model.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'; // RFC 4648 base32, lower case: 32 = 2^5, no bias
const CODE_CHARS = 24;
/** The length of codes issued before 120-bit codes: still accepted, never issued. */
const LEGACY_CODE_CHARS = 16;

/** One code, shown as six groups of four: xxxx-xxxx-xxxx-xxxx-xxxx-xxxx. */
export function newRecoveryCode(): string {
  const bytes = randomBytes(CODE_CHARS);
  let s = '';
  for (let i = 0; i < CODE_CHARS; i++) s += ALPHABET[bytes[i]! & 31];
  return s.match(/.{4}/g)!.join('-');
}

export function newRecoveryCodes(): string[] {
  const codes = new Set<string>();
  while (codes.size < RECOVERY_CODE_COUNT) codes.add(newRecoveryCode());
  return [...codes];
}

/** Case, spaces and dashes do not matter; null when it cannot be a recovery code. */
export function normalizeRecoveryCode(raw: string): string | null {
  const s = raw.toLowerCase().replace(/[\s-]/g, '');
  if (s.length !== CODE_CHARS && s.length !== LEGACY_CODE_CHARS) return null;
  for (const c of s) if (!ALPHABET.includes(c)) return null;
  return s;
}

export function hashRecoveryCode(userId: string, normalized: string): string {
  return sha256Hex(`${userId}:${normalized}`);
}
