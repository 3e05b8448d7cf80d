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
 * and sign-ins at four clients went from 0.85-0.87x raw-at-four to 0.90-0.98x with a queue of
 * two in front of libuv's pool, and to 1.05-1.24x with threads of their own (hash-pool.ts, which
 * says why). Those threads also keep libuv's pool free for what else uses it (file reads, DNS
 * lookups of the database host) during a sign-in flood.
 */
import { availableParallelism } from 'node:os';
import { timingSafeEqual } from 'node:crypto';
import { HashPool } from './hash-pool.js';

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
  private readonly pool: HashPool;
  private readonly dummy: Promise<string>;
  private dummyValue: string | null = null;
  constructor(readonly params: Argon2Params = DEFAULT_ARGON2, opts: HasherOptions = {}) {
    this.pool = new HashPool(opts.concurrency ?? availableParallelism());
    // A real hash with the current parameters, verified against when the account is unknown.
    this.dummy = this.hash('floodgate-dummy-password-for-equal-work');
    this.dummy.then((d) => { this.dummyValue = d; }, () => {});
  }

  /** Hashes running now and hashes waiting for a turn (the `floodgate_password_hashes` gauge). */
  get load(): { running: number; waiting: number } {
    return this.pool.load;
  }

  hash(password: string): Promise<string> {
    return this.pool.run<string>({ op: 'argon2.hash', password, options: { algorithm: 2 /* Argon2id */, ...this.params } });
  }

  async verify(stored: string, password: string): Promise<VerifyResult> {
    if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return { ok: false, needsRehash: false };
    switch (hashKind(stored)) {
      case 'argon2': {
        const p = parseArgonParams(stored);
        const ok = await this.pool.run<boolean>({ op: 'argon2.verify', stored, password }).catch(() => false);
        const weaker = !p || p.variant !== 'argon2id' || p.memoryCost < this.params.memoryCost || p.timeCost < this.params.timeCost;
        return { ok, needsRehash: ok && weaker };
      }
      case 'bcrypt': {
        // bcrypt only reads 72 bytes; the upgrade to argon2id removes that limit on next sign-in.
        const normalized = stored.replace(/^\$2y\$/, '$2b$');
        const ok = await this.pool.run<boolean>({ op: 'bcrypt.verify', stored: normalized, password }).catch(() => false);
        return { ok, needsRehash: ok };
      }
      case 'scrypt': {
        const ok = await this.verifyScrypt(stored, password);
        return { ok, needsRehash: ok };
      }
      default:
        return { ok: false, needsRehash: false };
    }
  }

  /** Same work as verifying a real password, for accounts that do not exist. */
  async verifyDummy(password: string): Promise<false> {
    // Queued at once, like a known account's verify (only the first requests after start wait for
    // the dummy's own hash).
    const dummy = this.dummyValue ?? await this.dummy;
    await this.pool.run({ op: 'argon2.verify', stored: dummy, password: password.slice(0, MAX_PASSWORD_BYTES) }).catch(() => false);
    return false;
  }

  /** Stop the hashing threads (hashes still waiting fail, as wrong passwords). */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** PHC scrypt: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>`. */
  private async verifyScrypt(stored: string, password: string): Promise<boolean> {
    const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(stored);
    if (!m) return false;
    const ln = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
    if (ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
    const salt = b64(m[4]!);
    const expected = b64(m[5]!);
    if (expected.length < 16 || expected.length > 128) return false;
    const N = 2 ** ln;
    const got = await this.pool.run<Uint8Array>({ op: 'scrypt', password, salt, keylen: expected.length, options: { N, r, p, maxmem: 256 * N * r + 1024 * 1024 } }).catch(() => null);
    return got !== null && got.length === expected.length && timingSafeEqual(got, expected);
  }
}

/** True when `stored` is a hash form Floodgate can verify (for imports). */
export function isSupportedHash(stored: string): boolean {
  const k = hashKind(stored);
  if (k === 'argon2') return parseArgonParams(stored) !== null;
  return k !== null;
}
