import type { Kysely } from 'kysely';

/** Courier: the dev mailbox, the in-app inbox, and an index for claiming due rows per lane. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('dev_mailbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('html', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dev_mailbox_created_idx').on('dev_mailbox').column('created_at').execute();

  await db.schema
    .createTable('inbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('read_at', 'bigint')
    .execute();
  await db.schema.createIndex('inbox_user_idx').on('inbox').columns(['user_id', 'id']).execute();

  await db.schema.createIndex('outbox_lane_due_idx').on('outbox').columns(['lane', 'state', 'next_attempt_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('outbox_lane_due_idx').execute();
  await db.schema.dropTable('inbox').execute();
  await db.schema.dropTable('dev_mailbox').execute();
}
