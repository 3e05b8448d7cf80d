/**
 * A fixed-capacity table of numeric records keyed by strings, in typed arrays allocated once.
 * The guard keeps its per-source rate-limit windows and its per-account sign-in failures here.
 *
 * Why by hand, and not a Map-based LRU (ours before, or lru-cache): those keep every key string,
 * a value object and a map entry per key, so a flood of fresh addresses allocated on every
 * request and left the heap (and RSS) a hundred MB larger; and they evict the least *recently*
 * used key, so anyone with enough addresses or junk emails could push out the counters that
 * matter (a victim account's failures, a heavy source's window) simply by being newer. Here:
 * - a key is reduced to a 64-bit fingerprint under two secret per-process seeds; the string is
 *   not kept, and nobody who cannot see the seeds can aim keys at a victim's bucket;
 * - the table is set-associative: a key lives in one bucket of WAYS slots; a new key takes a free
 *   or expired slot there, or else the slot the caller's `worth` ranks lowest (the smallest
 *   count, the fewest failures), so what is evicted under pressure is what matters least;
 * - memory is `capacity x 8 x (3 + columns)` bytes from the constructor on, whatever arrives.
 * A false match needs two keys with the same 64 bits in the same bucket (about 2^-61 per lookup).
 */
import { randomBytes } from 'node:crypto';
import { hash32 } from './sketch.js';

const WAYS = 8;
// A record is [fingerprint a, fingerprint b, until, ...columns], all in one Float64Array, and a
// bucket's records are contiguous: a lookup reads one run of adjacent cache lines. (Separate
// arrays per field cost a cache miss per field and way; next to argon2id, which keeps the memory
// bus busy, each miss was a microsecond and a sign-in paid 140 µs here.)
const FP_A = 0;
const FP_B = 1;
const UNTIL = 2;
const HEADER = 3;

export class FixedTable {
  private readonly data: Float64Array;
  private readonly stride: number;
  private readonly buckets: number;
  private readonly slots: number;
  private readonly seedA: number;
  private readonly seedB: number;
  private used = 0;

  /** `capacity` is rounded up to a power of two (at least WAYS); `columns` numbers per record. */
  constructor(capacity: number, columns: number) {
    let n = WAYS;
    while (n < capacity) n *= 2;
    this.slots = n;
    this.buckets = n / WAYS;
    this.stride = HEADER + columns;
    this.data = new Float64Array(n * this.stride);
    // Touch every page now: the operating system maps fresh memory lazily, and a first touch
    // per page at request time (a page fault, costly in a VM) cost more than the lookup itself.
    this.data.fill(-0).fill(0);
    const seeds = randomBytes(8);
    this.seedA = seeds.readUInt32LE(0);
    this.seedB = seeds.readUInt32LE(4);
  }

  get capacity(): number {
    return this.slots;
  }

  /** Live records (approximate: expired slots count until they are reused). */
  get size(): number {
    return this.used;
  }

  /** Column `col` of the record at `slot` (a value `find` or `claim` returned). */
  get(slot: number, col: number): number {
    return this.data[slot + HEADER + col]!;
  }

  set(slot: number, col: number, v: number): void {
    this.data[slot + HEADER + col] = v;
  }

  /** When the record at `slot` expires. */
  until(slot: number): number {
    return this.data[slot + UNTIL]!;
  }

  setUntil(slot: number, until: number): void {
    this.data[slot + UNTIL] = until;
  }

  /** The slot holding `key` and not expired at `now`, or -1. */
  find(key: string, now: number): number {
    const a = hash32(key, this.seedA);
    const b = (hash32(key, this.seedB) | 1) >>> 0; // never 0, so a fingerprint never looks free
    const d = this.data;
    const first = (a & (this.buckets - 1)) * WAYS * this.stride;
    for (let i = first, end = first + WAYS * this.stride; i < end; i += this.stride) {
      if (d[i + FP_B] === b && d[i + FP_A] === a) return d[i + UNTIL]! > now ? i : -1;
    }
    return -1;
  }

  /**
   * The slot of `key`, claimed if absent (its columns zeroed, its expiry set to `until`): a free
   * or expired slot of the bucket, else the one with the lowest `worth(slot)`.
   */
  claim(key: string, now: number, until: number, worth: (slot: number) => number): { slot: number; fresh: boolean } {
    const a = hash32(key, this.seedA);
    const b = (hash32(key, this.seedB) | 1) >>> 0;
    const d = this.data;
    const stride = this.stride;
    const first = (a & (this.buckets - 1)) * WAYS * stride;
    const end = first + WAYS * stride;
    let victim = -1;
    let victimWorth = Infinity;
    for (let i = first; i < end; i += stride) {
      if (d[i + FP_B] === b && d[i + FP_A] === a) {
        if (d[i + UNTIL]! > now) return { slot: i, fresh: false };
        victim = i; // our own expired record: reuse it
        victimWorth = -Infinity;
      } else if (d[i + UNTIL]! <= now) {
        if (victimWorth > -Infinity) { victim = i; victimWorth = -Infinity; }
      }
    }
    if (victim < 0) {
      // The bucket is full of live records: evict the least valuable.
      for (let i = first; i < end; i += stride) {
        const w = worth(i);
        if (victim < 0 || w < victimWorth) { victim = i; victimWorth = w; }
      }
    }
    if (d[victim + UNTIL] === 0) this.used++;
    d[victim + FP_A] = a;
    d[victim + FP_B] = b;
    d[victim + UNTIL] = until;
    d.fill(0, victim + HEADER, victim + stride);
    return { slot: victim, fresh: true };
  }

  delete(key: string): void {
    const a = hash32(key, this.seedA);
    const b = (hash32(key, this.seedB) | 1) >>> 0;
    const d = this.data;
    const first = (a & (this.buckets - 1)) * WAYS * this.stride;
    for (let i = first, end = first + WAYS * this.stride; i < end; i += this.stride) {
      if (d[i + FP_B] === b && d[i + FP_A] === a) {
        if (d[i + UNTIL] !== 0) this.used--;
        d.fill(0, i, i + this.stride);
      }
    }
  }
}
