/** Kysely access to the accounts module's tables (users, email_verifications). */
import { prepared } from '../../storage/prepared.js';
import type { Db, UsersTable } from '../../storage/schema.js';

export type UserRow = UsersTable;

// Every sign-in starts here: compiled once (storage/prepared.ts).
const byEmail = prepared((db, normalized: string) => db.selectFrom('users').selectAll().where('email_normalized', '=', normalized));

export const accountsStore = {
  async findByEmail(db: Db, normalized: string): Promise<UserRow | undefined> {
    return (await byEmail(db, normalized))[0];
  },
  findById(db: Db, id: string): Promise<UserRow | undefined> {
    return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  },
  async insert(db: Db, row: UserRow): Promise<boolean> {
    const r = await db.insertInto('users').values(row).onConflict((oc) => oc.column('email_normalized').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  },
  async existingEmails(db: Db, normalized: string[]): Promise<Set<string>> {
    if (!normalized.length) return new Set();
    const rows = await db.selectFrom('users').select('email_normalized').where('email_normalized', 'in', normalized).execute();
    return new Set(rows.map((r) => r.email_normalized));
  },
  async setPasswordHash(db: Db, id: string, hash: string, now: number, changed: boolean): Promise<void> {
    await db
      .updateTable('users')
      .set({ password_hash: hash, updated_at: now, ...(changed ? { password_changed_at: now, locked_at: null } : {}) })
      .where('id', '=', id)
      .execute();
  },
  /** Replace the hash only if it is still the one that was verified (no lost concurrent change). */
  async upgradeHash(db: Db, id: string, oldHash: string, newHash: string, now: number): Promise<void> {
    await db.updateTable('users').set({ password_hash: newHash, updated_at: now }).where('id', '=', id).where('password_hash', '=', oldHash).execute();
  },
  /** true only for the first proof: the conditional UPDATE is the check. */
  async markVerified(db: Db, id: string, now: number): Promise<boolean> {
    const r = await db.updateTable('users').set({ email_verified_at: now, updated_at: now }).where('id', '=', id).where('email_verified_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },
  async setLocked(db: Db, id: string, lockedAt: number | null, now: number): Promise<void> {
    await db.updateTable('users').set({ locked_at: lockedAt, updated_at: now }).where('id', '=', id).execute();
  },

  async insertVerification(db: Db, row: { id: string; user_id: string; secret_hash: string; created_at: number; expires_at: number }): Promise<void> {
    // A newer token replaces every older one.
    await db.deleteFrom('email_verifications').where('user_id', '=', row.user_id).execute();
    await db.insertInto('email_verifications').values({ ...row, consumed_at: null }).execute();
  },
  findVerification(db: Db, id: string) {
    return db.selectFrom('email_verifications').selectAll().where('id', '=', id).executeTakeFirst();
  },
  liveVerification(db: Db, userId: string, now: number) {
    return db.selectFrom('email_verifications').selectAll().where('user_id', '=', userId).where('consumed_at', 'is', null).where('expires_at', '>', now).executeTakeFirst();
  },
  /** Every verification token of the account (the password changed, or the address is proven). */
  async deleteVerifications(db: Db, userId: string): Promise<void> {
    await db.deleteFrom('email_verifications').where('user_id', '=', userId).execute();
  },
  /** Single use: the delete that consumes the token is the check (true only for the first caller). */
  async consumeVerification(db: Db, id: string): Promise<boolean> {
    const r = await db.deleteFrom('email_verifications').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  },
};
