import type { Kysely } from 'kysely';

/**
 * Device cookies (the sessions module's `devices`): one row per browser an account signed in
 * from, keyed by the cookie token's id, with sha256 of its secret; a sign-in that presents it is
 * a known device (no new-device notice, and its own failure budget instead of the account's
 * delays and lock).
 *
 * And, once: sessions of accounts whose address was never confirmed end now. From this version
 * on such an account gets no session at all (a squatter who signed up with someone else's
 * address must not keep one that can add factors), and the sessions made before it must not
 * outlive the rule.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('devices_user_idx').on('devices').columns(['user_id', 'last_seen_at']).execute();

  await db
    .updateTable('sessions')
    .set({ revoked_at: Date.now(), revoked_reason: 'email_unverified' })
    .where('revoked_at', 'is', null)
    .where('user_id', 'in', (eb: any) => eb.selectFrom('users').select('id').where('email_verified_at', 'is', null))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('devices').execute();
}
