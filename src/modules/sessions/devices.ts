/**
 * Device cookies (OWASP, "Slow down online guessing attacks with device cookies"): each
 * successful sign-in leaves a long-lived cookie in the browser that names that browser to that
 * account. A sign-in that presents one is a known device: it gets no new-device notice, and its
 * failures count against the device's own small budget instead of the account's delays and lock
 * (src/modules/guard/signin-throttle.ts), so strangers' guesses cannot lock the owner out of the
 * browsers they already use. Invariants:
 * - a token is `id.secret` from the CSPRNG (96-bit id, 256-bit secret); only sha256(secret) is
 *   stored, bound to one account, compared in constant time; it lives DEVICE_TTL_MS from the last
 *   sign-in that presented it;
 * - a token proves nothing for another account: lookups are by (token id, account);
 * - one browser keeps the tokens of its last DEVICES_PER_COOKIE accounts (a shared computer),
 *   one account at most DEVICES_PER_ACCOUNT rows (the least recently used go first), so a
 *   password holder cannot grow the table without end;
 * - the rows of an account go when its address is first proven (a squatter's browsers must not
 *   stay trusted), see SessionsService.endAllAccess.
 */
import { DAY } from '../../kernel/clock.js';
import { mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { prepared } from '../../storage/prepared.js';
import type { Db } from '../../storage/schema.js';
import type { CookieOptions } from '../../http/cookies.js';

/** How long a device stays known after its last sign-in (browsers cap cookies at 400 days). */
export const DEVICE_TTL_MS = 365 * DAY;
/** Accounts one browser is remembered for. */
export const DEVICES_PER_COOKIE = 5;
/** Devices remembered per account. */
export const DEVICES_PER_ACCOUNT = 50;

const SEPARATOR = '~';

/**
 * How the device cookie (http/context.ts DEVICE_COOKIE) is set: HttpOnly (no script reads it),
 * SameSite=Lax, Path=/ (sign-in pages, the API, the console), Secure on https, for as long as the
 * device is remembered.
 */
export const DEVICE_COOKIE_OPTIONS: CookieOptions = { sameSite: 'lax', maxAge: Math.floor(DEVICE_TTL_MS / 1000) };

/** The tokens in a cookie value, newest first; junk is dropped, never an error. */
export function parseDeviceCookie(raw: string | null | undefined): { id: string; secret: string; token: string }[] {
  if (typeof raw !== 'string' || raw.length > 1024) return [];
  const out: { id: string; secret: string; token: string }[] = [];
  for (const token of raw.split(SEPARATOR).slice(0, DEVICES_PER_COOKIE)) {
    const t = parseToken(token);
    if (t && !out.some((o) => o.id === t.id)) out.push({ ...t, token });
  }
  return out;
}

// On every sign-in: compiled once (storage/prepared.ts).
const insertDevice = prepared((db, id: string, userId: string, secretHash: string, now: number, expiresAt: number) =>
  db.insertInto('devices').values({ id, user_id: userId, secret_hash: secretHash, created_at: now, last_seen_at: now, expires_at: expiresAt }));
const touchDevice = prepared((db, id: string, now: number, expiresAt: number) => db.updateTable('devices').set({ last_seen_at: now, expires_at: expiresAt }).where('id', '=', id));
// One statement: the account's expired rows, and all but its DEVICES_PER_ACCOUNT most recently used,
// never the one just added (ties in last_seen_at fall by id, which is random).
const pruneDevices = prepared((db, userId: string, now: number, keepId: string) =>
  db.deleteFrom('devices').where('user_id', '=', userId).where('id', '!=', keepId).where((eb) => eb.or([
    eb('expires_at', '<=', now),
    eb('id', 'in', eb.selectFrom('devices').select('id').where('user_id', '=', userId).where('id', '!=', keepId)
      .orderBy('last_seen_at', 'desc').orderBy('id', 'desc').limit(1000).offset(DEVICES_PER_ACCOUNT - 1)),
  ])));

export const deviceStore = {
  /** Of these token ids, the rows that belong to `userId`. */
  async ofAccount(db: Db, ids: string[], userId: string) {
    if (!ids.length) return [];
    return db.selectFrom('devices').select(['id', 'secret_hash', 'expires_at']).where('id', 'in', ids).where('user_id', '=', userId).execute();
  },
  async insert(db: Db, row: { id: string; user_id: string; secret_hash: string; created_at: number; expires_at: number }): Promise<void> {
    await insertDevice(db, row.id, row.user_id, row.secret_hash, row.created_at, row.expires_at);
  },
  async touch(db: Db, id: string, now: number, expiresAt: number): Promise<void> {
    await touchDevice(db, id, now, expiresAt);
  },
  /** Expired rows of the account, and all but its DEVICES_PER_ACCOUNT most recently used, keeping `keepId`. */
  async prune(db: Db, userId: string, now: number, keepId: string): Promise<void> {
    await pruneDevices(db, userId, now, keepId);
  },
  async deleteAccount(db: Db, userId: string): Promise<number> {
    const r = await db.deleteFrom('devices').where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows);
  },
};

export class DeviceCookies {
  constructor(private readonly clock: { now(): number }) {}

  /** The id of the device the cookie names for this account (live, secret matching), or null. */
  async known(db: Db, raw: string | null | undefined, userId: string): Promise<string | null> {
    const tokens = parseDeviceCookie(raw);
    if (!tokens.length) return null;
    const rows = await deviceStore.ofAccount(db, tokens.map((t) => t.id), userId);
    const now = this.clock.now();
    for (const r of rows) {
      const t = tokens.find((x) => x.id === r.id);
      if (t && secretMatches(t.secret, r.secret_hash) && Number(r.expires_at) > now) return r.id;
    }
    return null;
  }

  /**
   * After a successful sign-in, in its transaction: the account's token in this browser is kept
   * (and its life extended) or a new one is minted. Returns the cookie value to set, with this
   * account's token first, and whether the device was known.
   */
  async remember(db: Db, raw: string | null | undefined, userId: string): Promise<{ cookie: string; known: boolean; deviceId: string }> {
    const now = this.clock.now();
    const tokens = parseDeviceCookie(raw);
    const knownId = await this.known(db, raw, userId);
    let mine: string;
    let deviceId: string;
    if (knownId) {
      await deviceStore.touch(db, knownId, now, now + DEVICE_TTL_MS);
      mine = tokens.find((t) => t.id === knownId)!.token;
      deviceId = knownId;
    } else {
      const t = mintToken();
      await deviceStore.insert(db, { id: t.id, user_id: userId, secret_hash: t.secretHash, created_at: now, expires_at: now + DEVICE_TTL_MS });
      await deviceStore.prune(db, userId, now, t.id);
      mine = t.token;
      deviceId = t.id;
    }
    const others = tokens.filter((t) => t.id !== deviceId).map((t) => t.token);
    return { cookie: [mine, ...others].slice(0, DEVICES_PER_COOKIE).join(SEPARATOR), known: knownId !== null, deviceId };
  }
}
