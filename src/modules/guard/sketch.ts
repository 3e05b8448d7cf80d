/**
 * Fixed-size sketches, so the guard's memory does not grow with what an attacker sends.
 *
 * Written here rather than taken from npm: the in-process HyperLogLog must count exactly like
 * Redis's PFADD/PFCOUNT would for the same stream (same precision, same error) and the npm
 * packages for it are either unmaintained or pull in big-number libraries. Both are ~50 lines.
 */
import { randomBytes } from 'node:crypto';

/**
 * MurmurHash3 (x86, 32-bit) of a string's UTF-16 code units, under a random per-process seed.
 * By hand because it is a dozen lines and SHA-1 through node:crypto (an object, a native call
 * and a Buffer per value) cost three times as much on the flood's hot path. The seed is secret
 * so that nobody can choose emails or addresses that pile into a few registers and make a
 * distinct count look small: the attacker never sees a hash value.
 */
const SEED = randomBytes(4).readUInt32LE(0);
export function hash32(s: string, seed: number = SEED): number {
  let h = seed;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)) >>> 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * HyperLogLog with 2^12 registers: 4 KiB, standard error about 1.6%. The seed defaults to the
 * process's secret one; tests pass a fixed seed so that their error bounds are checked against a
 * known hash rather than a fresh draw on every run (a 3-sigma bound fails 1 run in 400 otherwise).
 */
export class HyperLogLog {
  static readonly P = 12;
  static readonly M = 1 << HyperLogLog.P;
  private readonly registers = new Uint8Array(HyperLogLog.M);
  constructor(private readonly seed: number = SEED) {}

  add(value: string): void {
    const x = hash32(value, this.seed);
    const idx = x >>> (32 - HyperLogLog.P);
    // Leading zeros of the remaining bits (plus 32 more from the next word if they are all zero).
    const w = ((x << HyperLogLog.P) | (1 << (HyperLogLog.P - 1))) >>> 0;
    const rank = Math.clz32(w) + 1;
    if (rank > this.registers[idx]!) this.registers[idx] = rank;
  }

  count(): number {
    const m = HyperLogLog.M;
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < m; i++) {
      const r = this.registers[i]!;
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / m);
    const e = (alpha * m * m) / sum;
    // Small-range correction (linear counting), as in the original paper.
    if (e <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros));
    return Math.round(e);
  }
}

/**
 * Space-Saving top-k (Metwally et al.): at most `k` counters; any item with true frequency above
 * total/k is guaranteed to be in the table. Used for "top sources" and source concentration.
 */
export class SpaceSaving {
  // Parallel arrays and an index: a new item (every request of a flood from fresh addresses)
  // scans k numbers for the minimum instead of iterating a Map's entries.
  private readonly index = new Map<string, number>();
  private readonly items: string[] = [];
  private readonly counts: Float64Array;
  private readonly errors: Float64Array;
  total = 0;
  constructor(readonly k: number = 32) {
    this.counts = new Float64Array(k);
    this.errors = new Float64Array(k);
  }

  add(item: string, by = 1): void {
    this.total += by;
    const at = this.index.get(item);
    if (at !== undefined) {
      this.counts[at]! += by;
      return;
    }
    const n = this.items.length;
    if (n < this.k) {
      this.index.set(item, n);
      this.items.push(item);
      this.counts[n] = by;
      this.errors[n] = 0;
      return;
    }
    let slot = 0;
    for (let i = 1; i < n; i++) if (this.counts[i]! < this.counts[slot]!) slot = i;
    const min = this.counts[slot]!;
    this.index.delete(this.items[slot]!);
    this.index.set(item, slot);
    this.items[slot] = item;
    this.counts[slot] = min + by;
    this.errors[slot] = min;
  }

  top(n = 10): { item: string; count: number; share: number }[] {
    return this.items
      .map((item, i) => ({ item, count: this.counts[i]!, share: this.total ? this.counts[i]! / this.total : 0 }))
      .sort((a, b) => b.count - a.count)
      .slice(0, n);
  }

  /** Share of the heaviest item (an upper bound). */
  maxShare(): number {
    const t = this.top(1)[0];
    return t ? t.share : 0;
  }
}

/**
 * The per-source key of a client address. An IPv6 client usually holds a whole /64, so it counts
 * as one source (otherwise one host would get 2^64 budgets); IPv4 addresses count one by one.
 */
export function sourceKey(ip: string | null): string {
  if (!ip) return 'none';
  const v4mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4mapped) return v4mapped[1]!;
  if (!ip.includes(':')) return ip;
  const full = expandIpv6(ip.split('%')[0]!);
  return full ? `${full.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64` : ip.slice(0, 64);
}

/** The network a client address belongs to: /24 for IPv4, /56 for IPv6. */
export function networkOf(ip: string | null): string {
  if (!ip) return 'unknown';
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/i.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (ip.includes(':')) {
    const full = expandIpv6(ip);
    // 56 bits: three full groups and the high byte of the fourth.
    if (full) return `${full[0]}:${full[1]}:${full[2]}:${full[3]!.slice(0, 2)}00::/56`;
  }
  return ip;
}

function expandIpv6(ip: string): string[] | null {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  if (tail === undefined && h.length !== 8) return null;
  const fill = Array(8 - h.length - t.length).fill('0');
  const parts = [...h, ...(tail === undefined ? [] : fill), ...t];
  if (parts.length !== 8 || parts.some((p) => !/^[0-9a-f]{1,4}$/i.test(p))) return null;
  return parts.map((p) => p.toLowerCase().padStart(4, '0'));
}
