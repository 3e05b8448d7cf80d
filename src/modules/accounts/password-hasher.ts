/**
 * Password hashing. Invariants:
 * - new hashes are argon2id, m=19456 KiB, t=2, p=1 (OWASP minimum) or stronger;
 * - legacy hashes (older argon2 parameters, bcrypt $2a$/$2b$/$2y$, scrypt PHC) verify and report
 *   `needsRehash`, so sign-in upgrades them;
 * - a password is capped at 1024 bytes before any hashing (no hash-DoS through huge inputs);
 * - an unknown account costs the same work as a known one (`verifyDummy`);
 * - at most `concurrency` hashes run at once (default: the CPU cores this process may use); the
 *   rest wait their turn in arrival order, known and unknown accounts in the same queue.
 *
 * Why bound it: a hash is CPU- and memory-bound (19 MiB per argon2id), and libuv runs four at once
 * whatever the core count. On two cores four hashes and the event loop took turns on the CPU,
 * each turn evicting the others' caches: raw argon2id ran 5-20% faster two at a time than four,
 * and sign-ins at four clients went from 0.85-0.87x raw-at-four to 0.90-0.98x once the service
 * hashed two at a time. It also keeps two of libuv's four threads free for what else uses them
 * (file reads, DNS lookups of the database host) during a sign-in flood.
 *
 * The queue is on the event loop: a finished hash's turn passes to the next one only when the
 * loop gets to it, which left the cores idle about 7% of the time in the bench (a bare route with
 * the queue inside libuv instead, UV_THREADPOOL_SIZE=2, did that much better). Worker threads
 * with a hash queued behind the running one would close that gap without shrinking libuv's pool.
 */
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import pLimit, { type LimitFunction } from 'p-limit';
import { scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { hash as argonHash, verify as argonVerify } from '@node-rs/argon2';
import { verify as bcryptVerify } from '@node-rs/bcrypt';

const scrypt = promisify(scryptCb) as (pw: string | Buffer, salt: Buffer, keylen: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export const MAX_PASSWORD_BYTES = 1024;

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const DEFAULT_ARGON2: Argon2Params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

export interface VerifyResult {
  ok: boolean;
  needsRehash: boolean;
}

export type HashKind = 'argon2' | 'bcrypt' | 'scrypt';

export function hashKind(stored: string): HashKind | null {
  if (/^\$argon2(id|i|d)\$/.test(stored)) return 'argon2';
  if (/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(stored)) return 'bcrypt';
  if (/^\$scrypt\$ln=\d{1,2},r=\d{1,3},p=\d{1,3}\$[A-Za-z0-9+/.=_-]+\$[A-Za-z0-9+/.=_-]+$/.test(stored)) return 'scrypt';
  return null;
}

function parseArgonParams(stored: string): Argon2Params & { variant: string } | null {
  const m = /^\$(argon2(?:id|i|d))\$(?:v=\d+\$)?m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (!m) return null;
  return { variant: m[1]!, memoryCost: Number(m[2]), timeCost: Number(m[3]), parallelism: Number(m[4]) };
}

function b64(s: string): Buffer {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/').replace(/\./g, '+'), 'base64');
}

export interface HasherOptions {
  /** Hashes computed at once (default: `os.availableParallelism()`). */
  concurrency?: number;
}

export class PasswordHasher {
  private dummy: Promise<string>;
  private readonly limit: LimitFunction;
  constructor(readonly params: Argon2Params = DEFAULT_ARGON2, opts: HasherOptions = {}) {
    this.limit = pLimit(opts.concurrency ?? availableParallelism());
    // A real hash with the current parameters, verified against when the account is unknown.
    this.dummy = this.hash('floodgate-dummy-password-for-equal-work');
  }

  /** Hashes running now and hashes waiting for a turn (the `floodgate_password_hashes` gauge). */
  get load(): { running: number; waiting: number } {
    return { running: this.limit.activeCount, waiting: this.limit.pendingCount };
  }

  hash(password: string): Promise<string> {
    return this.limit(() => argonHash(password, { algorithm: 2 /* Argon2id */, ...this.params }));
  }

  async verify(stored: string, password: string): Promise<VerifyResult> {
    if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return { ok: false, needsRehash: false };
    switch (hashKind(stored)) {
      case 'argon2': {
        const p = parseArgonParams(stored);
        const ok = await this.limit(() => argonVerify(stored, password)).catch(() => false);
        const weaker = !p || p.variant !== 'argon2id' || p.memoryCost < this.params.memoryCost || p.timeCost < this.params.timeCost;
        return { ok, needsRehash: ok && weaker };
      }
      case 'bcrypt': {
        // bcrypt only reads 72 bytes; the upgrade to argon2id removes that limit on next sign-in.
        const normalized = stored.replace(/^\$2y\$/, '$2b$');
        const ok = await this.limit(() => bcryptVerify(password, normalized)).catch(() => false);
        return { ok, needsRehash: ok };
      }
      case 'scrypt': {
        const ok = await this.limit(() => verifyScrypt(stored, password));
        return { ok, needsRehash: ok };
      }
      default:
        return { ok: false, needsRehash: false };
    }
  }

  /** Same work as verifying a real password, for accounts that do not exist. */
  async verifyDummy(password: string): Promise<false> {
    // Queued at once, like a known account's verify (the dummy's own hash is ahead of it in the
    // queue, so awaiting it inside the turn cannot wait on a hash that has not started).
    await this.limit(async () => argonVerify(await this.dummy, password.slice(0, MAX_PASSWORD_BYTES))).catch(() => false);
    return false;
  }
}

/** PHC scrypt: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>`. */
async function verifyScrypt(stored: string, password: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(stored);
  if (!m) return false;
  const ln = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
  if (ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const salt = b64(m[4]!);
  const expected = b64(m[5]!);
  if (expected.length < 16 || expected.length > 128) return false;
  const N = 2 ** ln;
  const got = await scrypt(password, salt, expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }).catch(() => null);
  return got !== null && timingSafeEqual(got, expected);
}

/** True when `stored` is a hash form Floodgate can verify (for imports). */
export function isSupportedHash(stored: string): boolean {
  const k = hashKind(stored);
  if (k === 'argon2') return parseArgonParams(stored) !== null;
  return k !== null;
}
