import type { Kysely } from 'kysely';

/**
 * Password recovery: flows (one row per issued reset token), a per-account row that serialises
 * decisions and holds the quiet period, and the durable intake of anonymous reset requests.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('recovery_flows')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('strategy', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('token_id', 'text', (c) => c.notNull().unique())
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('deny_token_id', 'text', (c) => c.notNull().unique())
    .addColumn('deny_token_hash', 'text', (c) => c.notNull())
    .addColumn('send_count', 'integer', (c) => c.notNull())
    .addColumn('last_sent_at', 'bigint')
    .addColumn('otp_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('ended_at', 'bigint')
    .addColumn('end_reason', 'text')
    .addColumn('request_id', 'text')
    .addColumn('request_ip', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('recovery_flows_user_idx').on('recovery_flows').columns(['user_id', 'issued_at']).execute();
  await db.schema.createIndex('recovery_flows_issued_idx').on('recovery_flows').column('issued_at').execute();

  await db.schema
    .createTable('recovery_accounts')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('quiet_until', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('reset_intake')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email_normalized', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('user_agent', 'text')
    .addColumn('requester_user_id', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('claimed_by', 'text')
    .addColumn('claimed_until', 'bigint')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // 1 when the request carried a solved proof-of-work challenge.
    .addColumn('solved', 'integer', (c) => c.notNull().defaultTo(0))
    // 0 to decide, 1 kept for an operator (guard in hold), 2 released by an operator.
    .addColumn('held', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['reset_intake', 'recovery_accounts', 'recovery_flows']) await db.schema.dropTable(t).execute();
}
