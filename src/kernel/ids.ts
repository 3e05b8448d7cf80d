import { randomBytesPooled } from './crypto.js';

/**
 * Sortable unique ids: 48-bit millisecond time + 80 random bits, Crockford base32 (26 chars),
 * like ULID, and monotonic within a process: ids made in the same millisecond (or with a clock
 * that stands still, as in tests) still sort in creation order. Time-ordered ids keep B-tree
 * inserts local and make "newest first" an index scan.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_DIGITS = 16; // 80 bits, 5 a digit

let lastMs = -1;
// The random part as base-32 digits, most significant first. Plain numbers, not a BigInt: BigInt
// arithmetic allocated on every step and was a measurable share of a sign-in.
const random = new Uint8Array(RANDOM_DIGITS);

function freshRandom(): void {
  const bytes = randomBytesPooled(10);
  for (let i = 0; i < RANDOM_DIGITS; i++) {
    // Digit i takes bits [5i, 5i + 5) of the 80, big-endian.
    const bit = i * 5;
    const byte = bit >> 3;
    const word = ((bytes[byte]! << 8) | (bytes[byte + 1] ?? 0)) >> (11 - (bit & 7));
    random[i] = word & 31;
  }
  // Leave headroom (top bit clear) so increments within one millisecond do not overflow.
  random[0]! &= 15;
}

/** Add `by` to the random part; saturates at the maximum (as the 80-bit counter did). */
function increment(by: number): void {
  let carry = by;
  for (let i = RANDOM_DIGITS - 1; i >= 0 && carry > 0; i--) {
    const sum = random[i]! + carry;
    random[i] = sum & 31;
    carry = sum >> 5;
  }
  if (carry > 0) random.fill(31);
}

export function newId(nowMs: number = Date.now()): string {
  let ms = Math.max(0, Math.floor(nowMs));
  if (ms <= lastMs) {
    ms = lastMs;
    increment(1 + randomBytesPooled(1)[0]!);
  } else {
    lastMs = ms;
    freshRandom();
  }
  let time = '';
  for (let i = 0, t = ms; i < 10; i++, t = Math.floor(t / 32)) time = ALPHABET[t % 32]! + time;
  let rand = '';
  for (let i = 0; i < RANDOM_DIGITS; i++) rand += ALPHABET[random[i]!]!;
  return time + rand;
}
