/**
 * Operator authentication. The bootstrap FLOODGATE_ADMIN_TOKEN is compared in constant time;
 * named operator tokens (`floodgate operators create NAME`) are `id.secret` with only
 * sha256(secret) stored, like sessions.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import { constantTimeEqual, mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../storage/schema.js';

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
  ) {}

  async authenticate(token: string): Promise<Operator | null> {
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

  list() {
    return this.db.selectFrom('operators').select(['id', 'name', 'created_at', 'revoked_at']).orderBy('name').execute();
  }
}
