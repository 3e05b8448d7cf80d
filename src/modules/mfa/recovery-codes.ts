/**
 * Recovery codes (NIST SP 800-63B "look-up secrets"). Invariants:
 * - 10 codes of 16 base32 characters (80 bits) each, from the CSPRNG, shown once;
 * - at rest only SHA-256(userId:code). 80 bits cannot be searched offline (2^80 hashes), and the
 *   user id as salt defeats precomputed tables across accounts. The hash takes no server key on
 *   purpose: recovery codes are the way back in when FLOODGATE_SECRET_KEY (which seals the TOTP
 *   seeds) is lost, so they must not depend on it;
 * - each code works once: the UPDATE that marks it used is the check.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../kernel/crypto.js';
import { RECOVERY_CODE_COUNT } from './model.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'; // RFC 4648 base32, lower case: 32 = 2^5, no bias
const CODE_CHARS = 16;

/** One code, shown as xxxx-xxxx-xxxx-xxxx. */
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
  if (s.length !== CODE_CHARS) return null;
  for (const c of s) if (!ALPHABET.includes(c)) return null;
  return s;
}

export function hashRecoveryCode(userId: string, normalized: string): string {
  return sha256Hex(`${userId}:${normalized}`);
}
