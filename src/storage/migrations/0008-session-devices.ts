import type { Kysely } from 'kysely';

/**
 * Every sign-in asks whether the account used this device before (the new-device notice). The
 * user index alone made that a scan of all the account's sessions, revoked and expired ones
 * included, which grows without end for an account that signs in every day.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('sessions_user_device_idx').on('sessions').columns(['user_id', 'device']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_user_device_idx').execute();
}
