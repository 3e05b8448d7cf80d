import type { Kysely } from 'kysely';

/**
 * New-sign-in notices and folded protective notices.
 * - signin_notices: the "this wasn't me" token of each new-device notice (token id, sha256 of its
 *   secret, the session it may revoke); single use (deleted when used), 7 days.
 * - notice_folds: protective notices the delivery gate folded into the in-app inbox, and the
 *   digest mail that listed them (null until the day's digest is queued). `day` is the UTC date.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('signin_notices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('signin_notices_user_idx').on('signin_notices').column('user_id').execute();

  await db.schema
    .createTable('notice_folds')
    .addColumn('outbox_id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('folded_at', 'bigint', (c) => c.notNull())
    .addColumn('digest_id', 'text')
    .execute();
  await db.schema.createIndex('notice_folds_day_user_idx').on('notice_folds').columns(['day', 'user_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('notice_folds').execute();
  await db.schema.dropTable('signin_notices').execute();
}
