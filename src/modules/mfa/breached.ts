/**
 * Known-breached and common passwords (NIST SP 800-63B §3.1.1.2: compare new passwords against
 * such a list). Two adapters of the accounts module's BreachedPasswords port:
 *
 * - LocalBreachedList: the `passwords` dictionary of @zxcvbn-ts/language-common 3.0.4 (49,233
 *   entries from breach corpora, all lower case), kept as a sorted BigUint64Array of the first
 *   64 bits of SHA-1(lower-cased password). Built lazily on first use, once per process (the
 *   parsed JSON is dropped after the build). Case-insensitive. A 64-bit prefix makes a false
 *   hit about 49k / 2^64, i.e. never.
 *   Measured (Node 20.20, this project's 2-core machine; `npm run bench -- breached`):
 *     49,233 entries -> 49,233 distinct prefixes, 393,864 bytes of typed array (~470 KB of heap
 *     and buffers after the build, vs ~2.8 MB for a Set of the same strings); build ~100 ms once
 *     (JSON parse + 49k SHA-1); lookup ~1.2 µs (one SHA-1 + at most 16 comparisons; Set.has would
 *     be 0.03 µs, irrelevant next to the argon2id hash every password change costs).
 * - PwnedRangeList: the local list, then optionally the Pwned Passwords k-anonymity range API
 *   (FLOODGATE_PWNED_RANGE_URL): only the first 5 hex digits of SHA-1 leave the process, with
 *   padding asked for. It never blocks: an error, a non-200 or 2 s without an answer counts as
 *   "not found there" and the local answer stands. That API is case-sensitive (exact password).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BreachedPasswords } from '../accounts/index.js';

function sha1Hex(s: string): string {
  return createHash('sha1').update(s, 'utf8').digest('hex');
}

function prefix64(password: string): bigint {
  return BigInt('0x' + sha1Hex(password.toLowerCase()).slice(0, 16));
}

/** The zxcvbn-ts common-password list, read straight from the package's JSON (no module cache keeps it). */
export function loadZxcvbnPasswords(): string[] {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('@zxcvbn-ts/language-common/package.json'));
  const list = JSON.parse(readFileSync(join(pkgDir, 'src', 'passwords.json'), 'utf8')) as unknown;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) throw new Error('@zxcvbn-ts/language-common: passwords.json is not a list of strings');
  return list as string[];
}

export function buildPrefixSet(passwords: Iterable<string>): BigUint64Array {
  const values: bigint[] = [];
  for (const p of passwords) values.push(prefix64(p));
  const arr = BigUint64Array.from(values).sort();
  // Drop duplicates (case variants of one password collapse to one entry).
  let w = 0;
  for (let r = 0; r < arr.length; r++) if (r === 0 || arr[r] !== arr[w - 1]) arr[w++] = arr[r]!;
  return arr.slice(0, w);
}

export function hasPrefix(set: BigUint64Array, password: string): boolean {
  const x = prefix64(password);
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = set[mid]!;
    if (v === x) return true;
    if (v < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

let shared: BigUint64Array | null = null;

export class LocalBreachedList implements BreachedPasswords {
  private set: BigUint64Array | null;

  /** `passwords` for tests and custom lists; by default the zxcvbn-ts list, shared by the process. */
  constructor(passwords?: Iterable<string>) {
    this.set = passwords ? buildPrefixSet(passwords) : null;
  }

  /** Build now (at boot) rather than on the first sign-up. */
  warm(): this {
    this.prefixes();
    return this;
  }

  get size(): number {
    return this.prefixes().length;
  }

  private prefixes(): BigUint64Array {
    if (!this.set) this.set = shared ??= buildPrefixSet(loadZxcvbnPasswords());
    return this.set;
  }

  async isBreached(password: string): Promise<boolean> {
    return hasPrefix(this.prefixes(), password);
  }
}

export interface RangeOptions {
  /** Give up after this long (default 2 s) and keep the local answer. */
  timeoutMs?: number;
  /** Called on every failure (for a log line); never with the password or its hash. */
  onError?: (reason: string) => void;
}

const MAX_RANGE_BYTES = 2 * 1024 * 1024;

export class PwnedRangeList implements BreachedPasswords {
  private readonly base: string;
  constructor(
    baseUrl: string,
    private readonly local: BreachedPasswords,
    private readonly opts: RangeOptions = {},
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  async isBreached(password: string): Promise<boolean> {
    if (await this.local.isBreached(password)) return true;
    try {
      return await this.remote(password);
    } catch (e) {
      this.opts.onError?.(e instanceof Error ? e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : e.message.slice(0, 200) : 'error');
      return false;
    }
  }

  private async remote(password: string): Promise<boolean> {
    const hash = sha1Hex(password).toUpperCase();
    const res = await fetch(`${this.base}/range/${hash.slice(0, 5)}`, {
      headers: { 'add-padding': 'true', 'user-agent': 'floodgate' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 2000),
    });
    if (res.status !== 200 || !res.body) {
      this.opts.onError?.(`range API answered ${res.status}`);
      await res.body?.cancel().catch(() => {});
      return false;
    }
    // Read at most MAX_RANGE_BYTES: a broken or hostile endpoint cannot fill memory.
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_RANGE_BYTES) {
        await reader.cancel().catch(() => {});
        throw new Error('range API answer too large');
      }
      chunks.push(value);
    }
    const suffix = hash.slice(5);
    for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
      const [s, count] = line.trim().split(':');
      // Padding lines carry a count of 0 and are not hits.
      if (s?.toUpperCase() === suffix && Number(count) > 0) return true;
    }
    return false;
  }
}
