import { randomBytes } from 'node:crypto';

/**
 * Sortable unique ids: 48-bit millisecond time + 80 random bits, Crockford base32 (26 chars),
 * like ULID, and monotonic within a process: ids made in the same millisecond (or with a clock
 * that stands still, as in tests) still sort in creation order. Time-ordered ids keep B-tree
 * inserts local and make "newest first" an index scan.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_MAX = (1n << 80n) - 1n;

let lastMs = -1;
let lastRandom = 0n;

function encode(value: bigint, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[Number(value & 31n)]! + out;
    value >>= 5n;
  }
  return out;
}

export function newId(nowMs: number = Date.now()): string {
  let ms = Math.max(0, Math.floor(nowMs));
  if (ms <= lastMs && lastRandom < RANDOM_MAX) {
    ms = lastMs;
    lastRandom += 1n + BigInt(randomBytes(1)[0]!);
    if (lastRandom > RANDOM_MAX) lastRandom = RANDOM_MAX;
  } else {
    lastMs = ms;
    // Leave headroom (top bit clear) so increments within one millisecond do not overflow.
    lastRandom = BigInt('0x' + randomBytes(10).toString('hex')) >> 1n;
  }
  return encode(BigInt(ms), 10) + encode(lastRandom, 16);
}
