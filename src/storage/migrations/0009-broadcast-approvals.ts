import type { Kysely } from 'kysely';

/**
 * Two-person approval of broadcasts held by the blast radius.
 * - broadcasts.created_by_id: the creating operator's id (`bootstrap`, a named token's id, or
 *   `user:<id>` for a console operator), so the creator's own approval can be told apart; null
 *   for rows from before this migration (their creator is read from the outbox cause id).
 * - broadcast_approvals: one row per operator who approved a broadcast (the key makes a second
 *   approval by the same operator impossible).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('broadcasts').addColumn('created_by_id', 'text').execute();
  await db.schema
    .createTable('broadcast_approvals')
    .addColumn('broadcast_id', 'text', (c) => c.notNull())
    .addColumn('operator_id', 'text', (c) => c.notNull())
    .addColumn('operator_name', 'text', (c) => c.notNull())
    .addColumn('approved_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('broadcast_approvals_pk', ['broadcast_id', 'operator_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('broadcast_approvals').execute();
  await db.schema.alterTable('broadcasts').dropColumn('created_by_id').execute();
}
