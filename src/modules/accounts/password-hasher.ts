/**
 * Password hashing. Invariants:
 * - new hashes are argon2id, m=19456 KiB, t=2, p=1 (OWASP minimum) or stronger;
 * - legacy hashes (argon2 with other parameters, bcrypt $2a$/$2b$/$2y$, scrypt PHC) verify and
 *   report `needsRehash`, so sign-in upgrades them;
 * - a stored hash's cost parameters are bounded (`costClass`, HASH_BOUNDS below): a hash beyond
 *   the bounds is refused at import and never run at sign-in;
 * - a password is capped at 1024 bytes before any hashing (no hash-DoS through huge inputs);
 * - every verification does the same work, whatever the account (unknown, argon2id, imported
 *   bcrypt or scrypt, beyond the bounds): the timing argument below;
 * - at most `concurrency` hashes run at once (default: the CPU cores this process may use); the
 *   rest wait their turn in arrival order, known and unknown accounts in the same queue.
 *
 * Timing: why an unknown email, an argon2id account and an imported account look the same.
 * A hash's cost is set by its kind and parameters, its *cost class* (`argon2id m=19456,t=2,p=1`,
 * `bcrypt cost=10`, `scrypt ln=14,r=8,p=1`); within a class it does not depend on the password, on
 * the salt or on whether the password matches (each library computes the whole hash, then
 * compares in constant time). The hasher keeps the set of classes in use: the current argon2id
 * class always, and the legacy classes that stored hashes carry (hash-population.ts reads them
 * from the users table; imports add theirs before their rows are written). Every verification
 * submits one hash of every class in the set, in one fixed order, in one go: for the account's
 * own class its stored hash, for each other class a dummy of that class (a real hash of
 * DUMMY_PASSWORD with the same parameters, made once). An unknown email, an account without a
 * password, a password over 1024 bytes and a stored hash beyond the bounds run dummies only. So
 * every path sends the same jobs, with the same parameters, to the same queue, at the same
 * moment: the same CPU time and memory, and under load the same wait. What differs is only which
 * job's answer counts. With no legacy hash in the database the set is the current argon2id class
 * alone, and a sign-in costs one argon2id verification as before.
 * The price: while legacy hashes remain, every sign-in also pays one hash of each of their
 * classes (a bcrypt cost=10 class adds about 60-100 ms of a core to every sign-in, unknown emails
 * included). It shrinks as accounts sign in (their hash is upgraded to the current class, and a
 * class with no account left is dropped at the next full read of the table), and it is bounded:
 * each class by HASH_BOUNDS, their number by MAX_LEGACY_CLASSES.
 * Rejected designs: a delay after a faster hash (a sleeping request does not compete for the hash
 * threads, so under load it and a hashing one part ways; a slower legacy hash cannot be padded
 * down; a floor on argon2id sign-ins would cap their throughput); a dummy of one kind drawn per
 * email in proportion to the population (cheaper, but someone who knows the target's old system,
 * e.g. from a leak of it, learns whether the account exists); rehashing on import (the password
 * is not known; argon2id over the bcrypt hash still runs bcrypt at sign-in).
 *
 * Why bound concurrency: a hash is CPU- and memory-bound (19 MiB per argon2id), and libuv runs
 * four at once whatever the core count. On two cores four hashes and the event loop took turns on
 * the CPU, each turn evicting the others' caches: raw argon2id ran 5-20% faster two at a time than
 * four, and sign-ins at four clients went from 0.85-0.87x raw-at-four to 0.90-0.98x with a queue
 * of two in front of libuv's pool, and to 1.05-1.24x with threads of their own (hash-pool.ts,
 * which says why). Those threads also keep libuv's pool free for what else uses it (file reads,
 * DNS lookups of the database host) during a sign-in flood.
 */
import { availableParallelism } from 'node:os';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HashPool, type HashOp } from './hash-pool.js';

export const MAX_PASSWORD_BYTES = 1024;

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const DEFAULT_ARGON2: Argon2Params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

/**
 * The most a stored hash may cost (import refuses more; sign-in never runs more). Each bound
 * admits what widely used systems write and stops near the cost of bcrypt at 12, about a quarter
 * of a second of one core, with at most 128 MiB of memory per hash thread:
 * - bcrypt cost 4 to 12: 4 is bcrypt's own floor (libraries refuse less, cheaply: a dummy could
 *   not match it); 12 is the highest default of the common frameworks (Laravel, Rails/Devise,
 *   Django's BCryptSHA256, PHP 8.4's password_hash). Each step doubles the time: 13 is half a
 *   second, and `$2b$31$` days of a hash thread.
 * - scrypt N at most 2^17 (ln <= 17), 128·N·r at most 128 MiB, N·r·p at most 2^20: Django (ln=14,
 *   r=8, p=1: 16 MiB), the Go x/crypto example (ln=15), passlib (ln=16, 64 MiB) and ln=17 r=8 p=1
 *   (128 MiB) pass; N = 2^20 (scrypt's file-encryption setting, 1 GiB) does not.
 * - argon2 m at most 128 MiB, m·t at most 512 MiB-passes, p at most 16, m >= 8·p (argon2's own
 *   rule): OWASP's five settings, RFC 9106's second recommendation (64 MiB, t=3, p=4), PHP's
 *   default (64 MiB, t=4), libsodium INTERACTIVE (64 MiB, t=2) and Bitwarden (64 MiB, t=3, p=4)
 *   pass; libsodium MODERATE (256 MiB) and RFC 9106's first (2 GiB) do not.
 */
export const HASH_BOUNDS = {
  bcrypt: { minCost: 4, maxCost: 12 },
  scrypt: { maxLn: 17, maxMemoryBytes: 128 * 1024 * 1024, maxWork: 2 ** 20 },
  argon2: { maxMemoryKiB: 131072, maxWorkKiB: 524288, maxParallelism: 16 },
} as const;

/**
 * Legacy cost classes every verification may carry. Each adds one hash to every sign-in while any
 * account holds it; a migration brings one or two (a cost raised once), four leaves room.
 */
export const MAX_LEGACY_CLASSES = 4;

/** The password of the dummy hashes (not a secret: a dummy's answer is never used). */
export const DUMMY_PASSWORD = 'floodgate-dummy-password-for-equal-work';

export interface VerifyResult {
  ok: boolean;
  needsRehash: boolean;
  /** Set when the stored hash is beyond HASH_BOUNDS: it was not run (the reason, never the hash). */
  refused?: string;
}

export type HashKind = 'argon2' | 'bcrypt' | 'scrypt';

export function hashKind(stored: string): HashKind | null {
  if (/^\$argon2(id|i|d)\$/.test(stored)) return 'argon2';
  if (/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(stored)) return 'bcrypt';
  if (/^\$scrypt\$ln=\d{1,2},r=\d{1,3},p=\d{1,3}\$[A-Za-z0-9+/.=_-]+\$[A-Za-z0-9+/.=_-]+$/.test(stored)) return 'scrypt';
  return null;
}

/** What a hash of one class costs to verify: its kind and its cost parameters, nothing else. */
export type CostClass =
  | { kind: 'argon2'; key: string; variant: 'argon2id' | 'argon2i' | 'argon2d'; m: number; t: number; p: number }
  | { kind: 'bcrypt'; key: string; cost: number }
  | { kind: 'scrypt'; key: string; ln: number; r: number; p: number };

const UNSUPPORTED = 'passwordHash must be argon2 PHC, bcrypt ($2a$/$2b$/$2y$) or scrypt PHC';

/**
 * The cost class of a stored hash, with `problem` set when its parameters are beyond HASH_BOUNDS;
 * null when it is not a form Floodgate verifies.
 */
export function costClass(stored: string): { cls: CostClass; problem: string | null } | null {
  switch (hashKind(stored)) {
    case 'argon2': {
      const a = /^\$(argon2(?:id|i|d))\$(?:v=(?:16|19)\$)?m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{6,}$/.exec(stored);
      if (!a) return null;
      const variant = a[1] as 'argon2id' | 'argon2i' | 'argon2d', m = Number(a[2]), t = Number(a[3]), p = Number(a[4]);
      if (t < 1 || p < 1 || m < 8 * p) return null; // argon2 refuses these before any work
      const cls: CostClass = { kind: 'argon2', key: `${variant} m=${m},t=${t},p=${p}`, variant, m, t, p };
      const B = HASH_BOUNDS.argon2;
      const problem = m > B.maxMemoryKiB ? `argon2 m=${m} KiB is above ${B.maxMemoryKiB} (128 MiB)`
        : m * t > B.maxWorkKiB ? `argon2 m·t = ${m * t} is above ${B.maxWorkKiB} (e.g. 64 MiB with t=8)`
          : p > B.maxParallelism ? `argon2 p=${p} is above ${B.maxParallelism}` : null;
      return { cls, problem };
    }
    case 'bcrypt': {
      const cost = Number(stored.slice(4, 6));
      const B = HASH_BOUNDS.bcrypt;
      const problem = cost < B.minCost ? `bcrypt cost ${cost} is below ${B.minCost}, bcrypt's minimum`
        : cost > B.maxCost ? `bcrypt cost ${cost} is above ${B.maxCost}` : null;
      return { cls: { kind: 'bcrypt', key: `bcrypt cost=${cost}`, cost }, problem };
    }
    case 'scrypt': {
      const s = parseScrypt(stored);
      if (!s) return null;
      const { ln, r, p } = s, B = HASH_BOUNDS.scrypt;
      const problem = ln > B.maxLn ? `scrypt ln=${ln} is above ${B.maxLn} (N = 2^${B.maxLn})`
        : 128 * 2 ** ln * r > B.maxMemoryBytes ? `scrypt ln=${ln}, r=${r} needs more than 128 MiB (128·N·r)`
          : 2 ** ln * r * p > B.maxWork ? `scrypt N·r·p = 2^${ln}·${r}·${p} is above 2^20` : null;
      return { cls: { kind: 'scrypt', key: `scrypt ln=${ln},r=${r},p=${p}`, ln, r, p }, problem };
    }
    default:
      return null;
  }
}

/** PHC scrypt: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>`. */
function parseScrypt(stored: string): { ln: number; r: number; p: number; salt: Buffer; expected: Buffer } | null {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(stored);
  if (!m) return null;
  const ln = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
  if (ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) return null;
  const expected = b64(m[5]!);
  if (expected.length < 16 || expected.length > 128) return null;
  return { ln, r, p, salt: b64(m[4]!), expected };
}

function b64(s: string): Buffer {
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/').replace(/\./g, '+'), 'base64');
}

/** True when `stored` is a hash form Floodgate can verify (its costs may still be beyond the bounds). */
export function isSupportedHash(stored: string): boolean {
  return costClass(stored) !== null;
}

/** Why a stored hash cannot be imported (null: it can): its form, or a cost beyond HASH_BOUNDS. */
export function hashProblem(stored: string): string | null {
  const c = costClass(stored);
  if (!c) return UNSUPPORTED;
  return c.problem ? `passwordHash: ${c.problem} (the bounds and why: docs/security.md)` : null;
}

export interface HasherOptions {
  /** Hashes computed at once (default: `os.availableParallelism()`). */
  concurrency?: number;
}

/** A dummy of one class: a stored hash of DUMMY_PASSWORD (scrypt: its salt and key). */
type Dummy = { stored: string } | { salt: Buffer; expected: Buffer };

interface ClassEntry {
  cls: CostClass;
  /** Never rejects: null when it could not be made (the pool closed, or three tries failed). */
  dummy: Promise<Dummy | null>;
  /** The dummy once made (undefined before). */
  made?: Dummy | null;
  /** When it joined (see `mark`). */
  seq: number;
}

export class PasswordHasher {
  private readonly pool: HashPool;
  private readonly current: CostClass & { kind: 'argon2' };
  private readonly classes = new Map<string, ClassEntry>();
  /** The classes in the order every verification submits them: the current one, then the legacy ones by key. */
  private order: ClassEntry[] = [];
  private seq = 0;
  private closed = false;
  constructor(readonly params: Argon2Params = DEFAULT_ARGON2, opts: HasherOptions = {}) {
    this.pool = new HashPool(opts.concurrency ?? availableParallelism());
    const { memoryCost: m, timeCost: t, parallelism: p } = params;
    this.current = { kind: 'argon2', key: `argon2id m=${m},t=${t},p=${p}`, variant: 'argon2id', m, t, p };
    // The current class's dummy is made at once: unknown emails are verified against it from the start.
    this.join(this.current);
  }

  /** Hashes running now and hashes waiting for a turn (the `floodgate_password_hashes` gauge). */
  get load(): { running: number; waiting: number } {
    return this.pool.load;
  }

  /** The start of a stored hash of the current class (what needs no upgrade). */
  get currentPrefix(): string {
    return `$argon2id$v=19$m=${this.current.m},t=${this.current.t},p=${this.current.p}$`;
  }

  /** The legacy cost classes every verification runs one hash of, besides the current one. */
  get legacyClasses(): string[] {
    return this.order.filter((e) => e.cls !== this.current).map((e) => e.cls.key);
  }

  hash(password: string): Promise<string> {
    return this.pool.run<string>({ op: 'argon2.hash', password, options: { algorithm: 2 /* Argon2id */, ...this.params } });
  }

  /**
   * Verify against a stored hash, after the same work as any other verification (see the header):
   * one hash of every class in use, the stored one in its class's place.
   */
  verify(stored: string, password: string): Promise<VerifyResult> {
    return this.verifyAmong(stored, password);
  }

  /** The same work as `verify`, for accounts that do not exist or have no password. */
  async verifyDummy(password: string): Promise<false> {
    await this.verifyAmong(null, password);
    return false;
  }

  /**
   * Take a stored hash's class into the set every verification runs (imports call this before
   * writing their rows). Null when it is in the set now; otherwise why it cannot be (its form, a
   * cost beyond HASH_BOUNDS, or MAX_LEGACY_CLASSES reached), for the operator.
   */
  admit(stored: string): string | null {
    return hashProblem(stored) ?? this.admitClass(costClass(stored)!.cls);
  }

  /** `admit` for a class (within the bounds) read from the users table. */
  admitClass(cls: CostClass): string | null {
    if (this.classes.has(cls.key)) return null;
    if (this.classes.size - 1 >= MAX_LEGACY_CLASSES) {
      return `passwordHash: ${cls.key} would be a ${MAX_LEGACY_CLASSES + 1}th kind of legacy hash (in use: ${this.legacyClasses.join('; ')}); `
        + `every sign-in runs one hash of each kind while any account holds it, so at most ${MAX_LEGACY_CLASSES} (docs/security.md)`;
    }
    this.join(cls);
    return null;
  }

  /** A point in time for `replaceLegacy`: classes admitted after it are kept. */
  mark(): number {
    return this.seq;
  }

  /**
   * Make the legacy classes these (a full read of the stored hashes), keeping any admitted since
   * `since` (an import that committed after the read began). Past MAX_LEGACY_CLASSES, those in
   * the set now stay, then the first ones win (pass them most used first); the rest are returned.
   */
  replaceLegacy(found: CostClass[], since: number): string[] {
    const keep = new Set(found.map((c) => c.key));
    for (const [key, e] of this.classes) if (e.cls !== this.current && !keep.has(key) && e.seq < since) this.classes.delete(key);
    const left: string[] = [];
    for (const cls of found) {
      if (cls.key === this.current.key || this.classes.has(cls.key)) continue;
      if (this.classes.size - 1 >= MAX_LEGACY_CLASSES) left.push(cls.key);
      else this.join(cls);
    }
    this.reorder();
    return left;
  }

  /** Stop the hashing threads (hashes still waiting fail, as wrong passwords). */
  close(): Promise<void> {
    this.closed = true;
    return this.pool.close();
  }

  private join(cls: CostClass): void {
    const entry: ClassEntry = { cls, dummy: this.makeDummyRetrying(cls), seq: this.seq++ };
    void entry.dummy.then((d) => { entry.made = d; });
    this.classes.set(cls.key, entry);
    this.reorder();
  }

  private reorder(): void {
    const legacy = [...this.classes.values()].filter((e) => e.cls !== this.current).sort((a, b) => (a.cls.key < b.cls.key ? -1 : 1));
    this.order = [this.classes.get(this.current.key)!, ...legacy];
  }

  /** A dummy that costs nothing would undo the equal work: one whose thread died is made again. */
  private async makeDummyRetrying(cls: CostClass): Promise<Dummy | null> {
    for (let tries = 0; tries < 3 && !this.closed; tries++) {
      try {
        return await this.makeDummy(cls);
      } catch { /* a hash thread died: try again */ }
    }
    return null;
  }

  /** A real hash of DUMMY_PASSWORD in the class, computed once on the hash threads. */
  private async makeDummy(cls: CostClass): Promise<Dummy> {
    switch (cls.kind) {
      case 'argon2': {
        const algorithm = { argon2d: 0, argon2i: 1, argon2id: 2 }[cls.variant];
        const options = { algorithm, memoryCost: cls.m, timeCost: cls.t, parallelism: cls.p };
        return { stored: await this.pool.run<string>({ op: 'argon2.hash', password: DUMMY_PASSWORD, options }) };
      }
      case 'bcrypt':
        return { stored: await this.pool.run<string>({ op: 'bcrypt.hash', password: DUMMY_PASSWORD, cost: cls.cost }) };
      case 'scrypt': {
        const salt = randomBytes(16);
        const expected = Buffer.from(await this.pool.run<Uint8Array>(scryptJob(cls.ln, cls.r, cls.p, DUMMY_PASSWORD, salt, 32)));
        return { salt, expected };
      }
    }
  }

  private verifyAmong(stored: string | null, password: string): Promise<VerifyResult> {
    const tooLong = Buffer.byteLength(password) > MAX_PASSWORD_BYTES;
    const own = stored === null ? null : costClass(stored);
    // A hash beyond the bounds is never run (a `$2b$31$` would hold a hash thread for days): it costs like a wrong password.
    const usable = own && !own.problem && !tooLong ? own.cls : null;
    if (usable && !this.classes.has(usable.key)) this.admit(stored!);
    const entries = [...this.order];
    // Over MAX_LEGACY_CLASSES (only when the table held more before the bound): its own hash, besides the set.
    if (usable && !this.classes.has(usable.key)) entries.push({ cls: usable, dummy: Promise.resolve(null), made: null, seq: -1 });
    const pw = tooLong ? password.slice(0, MAX_PASSWORD_BYTES) : password;
    const submit = async (dummies: (Dummy | null)[]): Promise<VerifyResult> => {
      const answers = await Promise.all(entries.map((e, i) => (
        e.cls.key === usable?.key ? this.check(e.cls, stored!, pw) : this.checkDummy(e.cls, dummies[i]!, pw))));
      const ok = usable !== null && answers[entries.findIndex((e) => e.cls.key === usable.key)] === true;
      const result: VerifyResult = { ok, needsRehash: ok && usable.key !== this.current.key };
      if (own?.problem) result.refused = own.problem;
      return result;
    };
    // Every path waits for every dummy, whichever it uses; once they are made (all but the first
    // verifications of a class), the jobs join the queue at once, in the caller's arrival order.
    if (entries.every((e) => e.made !== undefined)) return submit(entries.map((e) => e.made!));
    return Promise.all(entries.map((e) => e.dummy)).then(submit);
  }

  private checkDummy(cls: CostClass, dummy: Dummy | null, password: string): Promise<boolean> {
    if (!dummy) return Promise.resolve(false);
    if ('stored' in dummy) return this.check(cls, dummy.stored, password);
    const { ln, r, p } = cls as CostClass & { kind: 'scrypt' };
    return this.scrypt(ln, r, p, password, dummy.salt, dummy.expected);
  }

  private check(cls: CostClass, stored: string, password: string): Promise<boolean> {
    switch (cls.kind) {
      case 'argon2':
        return this.pool.run<boolean>({ op: 'argon2.verify', stored, password }).catch(() => false);
      case 'bcrypt':
        // bcrypt only reads 72 bytes; the upgrade to argon2id removes that limit on next sign-in.
        return this.pool.run<boolean>({ op: 'bcrypt.verify', stored: stored.replace(/^\$2y\$/, '$2b$'), password }).catch(() => false);
      case 'scrypt': {
        const s = parseScrypt(stored);
        return s ? this.scrypt(s.ln, s.r, s.p, password, s.salt, s.expected) : Promise.resolve(false);
      }
    }
  }

  private async scrypt(ln: number, r: number, p: number, password: string, salt: Buffer, expected: Buffer): Promise<boolean> {
    const got = await this.pool.run<Uint8Array>(scryptJob(ln, r, p, password, salt, expected.length)).catch(() => null);
    return got !== null && got.length === expected.length && timingSafeEqual(got, expected);
  }
}

function scryptJob(ln: number, r: number, p: number, password: string, salt: Buffer, keylen: number): HashOp {
  const N = 2 ** ln;
  return { op: 'scrypt', password, salt, keylen, options: { N, r, p, maxmem: 256 * N * r + 1024 * 1024 } };
}
