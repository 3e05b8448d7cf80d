/**
 * Small, explicit crypto helpers. Invariants:
 * - every secret comes from the CSPRNG (crypto.randomBytes), never Math.random;
 * - secrets are compared with timingSafeEqual on fixed-length digests;
 * - only sha256 digests of bearer secrets are stored (the secret has >=128 bits of entropy,
 *   so a fast hash is enough: there is nothing to brute-force).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

/**
 * CSPRNG bytes from a pool that the CSPRNG refills 8 KiB at a time, as Node does for
 * crypto.randomUUID: one call into OpenSSL per few hundred ids and tokens instead of one per
 * value (each call takes OpenSSL's DRBG lock; on the sign-in path that was 8% of the CPU). Every
 * byte is handed out once, copied out of the pool, so no two callers ever share a byte.
 */
const POOL = Buffer.alloc(8192);
let poolAt = POOL.length;
export function randomBytesPooled(n: number): Buffer {
  if (n > 256) return randomBytes(n);
  if (poolAt + n > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const out = Buffer.allocUnsafe(n);
  POOL.copy(out, 0, poolAt, poolAt + n);
  POOL.fill(0, poolAt, poolAt + n);
  poolAt += n;
  return out;
}

export function randomBase64url(bytes: number): string {
  return randomBytesPooled(bytes).toString('base64url');
}

export function sha256(input: string | Buffer): Buffer {
  return createHash('sha256').update(input).digest();
}

export function sha256Hex(input: string | Buffer): string {
  return createHash('sha256').update(input).digest('hex');
}

export function hmacSha256Hex(key: string | Buffer, input: string | Buffer): string {
  return createHmac('sha256', key).update(input).digest('hex');
}

/** Constant-time equality of two strings of any length (both are hashed first, so lengths do not leak). */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/**
 * A bearer token `id.secret`: the id finds the row, only sha256(secret) is stored, and the
 * comparison is constant-time (Lucia / the Copenhagen Book). 96-bit id, 256-bit secret.
 */
export interface MintedToken {
  id: string;
  token: string;
  secretHash: string;
}

export function mintToken(): MintedToken {
  const id = randomBase64url(12);
  const secret = randomBase64url(32);
  return { id, token: `${id}.${secret}`, secretHash: sha256Hex(secret) };
}

const TOKEN_RE = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

export function parseToken(token: unknown): { id: string; secret: string } | null {
  if (typeof token !== 'string' || token.length > 100) return null;
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

/** True when `secret` hashes to `storedHash`, compared in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(sha256Hex(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Authenticated encryption at rest (AES-256-GCM) for TOTP seeds and queued mail that carries a
 * token link. Output: `v1.<iv>.<tag>.<ciphertext>` in base64url. `aad` binds a ciphertext to its row.
 */
export class SecretBox {
  /** Also the root from which purpose-bound keys are derived (HMAC(key, purpose)). */
  readonly key: Buffer;
  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key');
    this.key = key;
  }
  seal(plaintext: string, aad = ''): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }
  open(sealed: string, aad = ''): string | null {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') return null;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(parts[1]!, 'base64url'));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(Buffer.from(parts[2]!, 'base64url'));
      return Buffer.concat([d.update(Buffer.from(parts[3]!, 'base64url')), d.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
