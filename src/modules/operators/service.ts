/**
 * Operator authentication. Invariants:
 * - the bootstrap FLOODGATE_ADMIN_TOKEN is compared in constant time (both sides hashed first);
 *   the config refuses one shorter than 32 characters on https (16 on http, with a warning);
 * - named operator tokens (`floodgate operators create NAME`) are `fgo_` + `id.secret` (a 256-bit
 *   secret, 64 characters in all), with only sha256(secret) stored, like sessions;
 * - failed operator authentication is throttled per source (IPv4 address, IPv6 /64) and per
 *   network (/24, /56) in the guard store's sliding windows; the throttle is checked before any
 *   token is compared, so a throttled source learns nothing, not even from the right token.
 */
import type { Kysely } from 'kysely';
import { MINUTE, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { constantTimeEqual, mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../storage/schema.js';
import { networkOf, sourceKey, type LimitRule, type RateLimiter } from '../guard/index.js';

/** Failed operator authentications per source and per network; past them, 429 until the window slides. */
export const OPERATOR_FAILURES_PER_SOURCE: LimitRule = { windowMs: 10 * MINUTE, limit: 20 };
export const OPERATOR_FAILURES_PER_NETWORK: LimitRule = { windowMs: 10 * MINUTE, limit: 200 };

export interface Operator {
  id: string;
  name: string;
}

export const BOOTSTRAP_OPERATOR: Operator = { id: 'bootstrap', name: 'bootstrap (FLOODGATE_ADMIN_TOKEN)' };

export class OperatorsService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly adminToken: string | null,
    /** The guard store: failure windows shared by every instance. */
    private readonly limiter: RateLimiter,
  ) {}

  /**
   * The operator a bearer token belongs to, or null. Throws rate_limited (429, Retry-After) while
   * the caller's source or network has failed too often, before looking at the token.
   */
  async authenticate(token: string, ctx: RequestContext): Promise<Operator | null> {
    const keys: [string, LimitRule][] = [
      [`operator-fail:source:${sourceKey(ctx.ip)}`, OPERATOR_FAILURES_PER_SOURCE],
      [`operator-fail:network:${networkOf(ctx.ip)}`, OPERATOR_FAILURES_PER_NETWORK],
    ];
    // Checked before the compare: a throttled guesser gets no answer about any token, right or wrong.
    for (const [key, rule] of keys) {
      if ((await this.limiter.peek(key, rule)) + 1 <= rule.limit) continue;
      const r = await this.limiter.hit(key, rule);
      throw new AppError('rate_limited', 'Too many failed operator authentications from your network. Try again later.', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))) },
      });
    }
    const op = await this.match(token);
    if (!op) for (const [key, rule] of keys) await this.limiter.hit(key, rule);
    return op;
  }

  private async match(token: string): Promise<Operator | null> {
    if (this.adminToken && constantTimeEqual(token, this.adminToken)) return BOOTSTRAP_OPERATOR;
    const parsed = parseToken(token.startsWith('fgo_') ? token.slice(4) : '');
    if (!parsed) return null;
    const row = await this.db.selectFrom('operators').selectAll().where('id', '=', parsed.id).executeTakeFirst();
    if (!row || row.revoked_at !== null || !secretMatches(parsed.secret, row.secret_hash)) return null;
    return { id: row.id, name: row.name };
  }

  /** Create a named operator; the token is shown once and never stored. */
  async create(name: string): Promise<{ operator: Operator; token: string }> {
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw new AppError('invalid_request', 'operator names are 1-64 characters of letters, digits, . _ @ -');
    const t = mintToken();
    const r = await this.db.insertInto('operators').values({ id: t.id, name, secret_hash: t.secretHash, created_at: this.clock.now(), revoked_at: null })
      .onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new AppError('conflict', `an operator named ${name} exists`);
    return { operator: { id: t.id, name }, token: `fgo_${t.token}` };
  }

  async revoke(name: string): Promise<boolean> {
    const r = await this.db.updateTable('operators').set({ revoked_at: this.clock.now() }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The ids of the named operators whose tokens are not revoked (who counts as "another operator"). */
  async liveIds(): Promise<string[]> {
    return (await this.db.selectFrom('operators').select('id').where('revoked_at', 'is', null).execute()).map((r) => r.id);
  }

  list() {
    return this.db.selectFrom('operators').select(['id', 'name', 'created_at', 'revoked_at']).orderBy('name').execute();
  }
}
