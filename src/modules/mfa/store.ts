/** Kysely access to the MFA module's tables (mfa_totp, mfa_recovery_codes, mfa_passkeys, mfa_challenges). */
import { newId } from '../../kernel/ids.js';
import type { Db, MfaPasskeysTable, MfaTotpTable } from '../../storage/schema.js';
import { prepared } from '../../storage/prepared.js';

/** What a WebAuthn challenge was issued for: a challenge works only for its own ceremony. */
export type ChallengePurpose = 'register' | 'authenticate' | 'console';

export type TotpRow = MfaTotpTable;
export type PasskeyRow = MfaPasskeysTable;

const n = (v: bigint | number | undefined | null) => Number(v ?? 0);

// Asked on every sign-in: compiled once (storage/prepared.ts).
const secondFactors = prepared((db, userId: string) =>
  db.selectNoFrom((eb) => [
    eb.exists(eb.selectFrom('mfa_totp').select('id').where('user_id', '=', userId).where('state', '=', 'active')).as('totp'),
    eb.exists(eb.selectFrom('mfa_passkeys').select('id').where('user_id', '=', userId)).as('passkey'),
  ]));

export const mfaStore = {
  // --- TOTP ---------------------------------------------------------------------------------
  totpOf(db: Db, userId: string): Promise<TotpRow | undefined> {
    return db.selectFrom('mfa_totp').selectAll().where('user_id', '=', userId).executeTakeFirst();
  },
  /** Replace any pending enrolment of the user with a new one (an active factor is left alone by the caller). */
  async putPendingTotp(db: Db, row: { id: string; user_id: string; secret_sealed: string; created_at: number }): Promise<void> {
    await db.deleteFrom('mfa_totp').where('user_id', '=', row.user_id).where('state', '=', 'pending').execute();
    await db.insertInto('mfa_totp').values({ ...row, state: 'pending', confirmed_at: null, last_used_step: null }).execute();
  },
  /** pending -> active, remembering the step of the confirming code so it cannot be replayed. */
  async activateTotp(db: Db, id: string, now: number, step: number): Promise<boolean> {
    const r = await db.updateTable('mfa_totp').set({ state: 'active', confirmed_at: now, last_used_step: step })
      .where('id', '=', id).where('state', '=', 'pending').executeTakeFirst();
    return n(r.numUpdatedRows) === 1;
  },
  /** Single use of a time step: true only for the first caller with a step above the last one. */
  async useTotpStep(db: Db, id: string, step: number): Promise<boolean> {
    const r = await db.updateTable('mfa_totp').set({ last_used_step: step })
      .where('id', '=', id).where('state', '=', 'active')
      .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
      .executeTakeFirst();
    return n(r.numUpdatedRows) === 1;
  },
  async deleteTotp(db: Db, userId: string, state: 'active' | 'pending'): Promise<boolean> {
    const r = await db.deleteFrom('mfa_totp').where('user_id', '=', userId).where('state', '=', state).executeTakeFirst();
    return n(r.numDeletedRows) > 0;
  },

  // --- recovery codes -----------------------------------------------------------------------
  async replaceRecoveryCodes(db: Db, userId: string, hashes: string[], now: number): Promise<void> {
    await db.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
    await db.insertInto('mfa_recovery_codes')
      .values(hashes.map((h) => ({ id: newId(now), user_id: userId, code_hash: h, created_at: now, used_at: null })))
      .execute();
  },
  async deleteRecoveryCodes(db: Db, userId: string): Promise<void> {
    await db.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
  },
  /** Single use: the UPDATE that marks the code used is the check. */
  async useRecoveryCode(db: Db, userId: string, hash: string, now: number): Promise<boolean> {
    const r = await db.updateTable('mfa_recovery_codes').set({ used_at: now })
      .where('user_id', '=', userId).where('code_hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
    return n(r.numUpdatedRows) === 1;
  },
  async recoveryCodesLeft(db: Db, userId: string): Promise<number> {
    const r = await db.selectFrom('mfa_recovery_codes').select((eb) => eb.fn.countAll<number>().as('c'))
      .where('user_id', '=', userId).where('used_at', 'is', null).executeTakeFirst();
    return n(r?.c);
  },

  // --- passkeys -----------------------------------------------------------------------------
  passkeysOf(db: Db, userId: string): Promise<PasskeyRow[]> {
    return db.selectFrom('mfa_passkeys').selectAll().where('user_id', '=', userId).orderBy('id').limit(100).execute();
  },
  /** Whether the account has an active TOTP or a passkey: one round trip on every sign-in. */
  async hasSecondFactor(db: Db, userId: string): Promise<boolean> {
    const [r] = await secondFactors(db, userId);
    // SQLite answers 0/1, PostgreSQL true/false.
    return Boolean(Number(r?.totp)) || Boolean(Number(r?.passkey));
  },
  async passkeyCount(db: Db, userId: string): Promise<number> {
    const r = await db.selectFrom('mfa_passkeys').select((eb) => eb.fn.countAll<number>().as('c')).where('user_id', '=', userId).executeTakeFirst();
    return n(r?.c);
  },
  passkeyByCredential(db: Db, credentialId: string): Promise<PasskeyRow | undefined> {
    return db.selectFrom('mfa_passkeys').selectAll().where('credential_id', '=', credentialId).executeTakeFirst();
  },
  /** false when the credential is already registered (to any account). */
  async insertPasskey(db: Db, row: PasskeyRow): Promise<boolean> {
    const r = await db.insertInto('mfa_passkeys').values(row).onConflict((oc) => oc.column('credential_id').doNothing()).executeTakeFirst();
    return n(r.numInsertedOrUpdatedRows) === 1;
  },
  async renamePasskey(db: Db, userId: string, id: string, name: string): Promise<boolean> {
    const r = await db.updateTable('mfa_passkeys').set({ name }).where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return n(r.numUpdatedRows) === 1;
  },
  async deletePasskey(db: Db, userId: string, id: string): Promise<boolean> {
    const r = await db.deleteFrom('mfa_passkeys').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return n(r.numDeletedRows) === 1;
  },
  /**
   * Record a use. The signature counter must grow when the authenticator keeps one (a clone
   * shows up as a counter that goes back); authenticators that always report 0 are allowed.
   */
  async usePasskey(db: Db, id: string, oldCounter: number, newCounter: number, now: number): Promise<boolean> {
    let q = db.updateTable('mfa_passkeys').set({ counter: newCounter, last_used_at: now }).where('id', '=', id).where('counter', '=', oldCounter);
    if (newCounter !== 0 || oldCounter !== 0) q = q.where('counter', '<', newCounter);
    const r = await q.executeTakeFirst();
    return n(r.numUpdatedRows) === 1;
  },

  // --- WebAuthn challenges ------------------------------------------------------------------
  async putChallenge(db: Db, row: { challenge_hash: string; purpose: ChallengePurpose; user_id: string | null; session_id: string | null; created_at: number; expires_at: number }): Promise<void> {
    // Expired rows go as new ones come: the table holds at most a few minutes of ceremonies.
    await db.deleteFrom('mfa_challenges').where('expires_at', '<=', row.created_at).execute();
    await db.insertInto('mfa_challenges').values({ id: newId(row.created_at), ...row }).execute();
  },
  /** Single use: the DELETE is the check; returns the row only to its first taker, and only if live. */
  async takeChallenge(db: Db, hash: string, purpose: ChallengePurpose, now: number) {
    const row = await db.selectFrom('mfa_challenges').selectAll().where('challenge_hash', '=', hash).where('purpose', '=', purpose).executeTakeFirst();
    if (!row) return null;
    const r = await db.deleteFrom('mfa_challenges').where('id', '=', row.id).executeTakeFirst();
    if (n(r.numDeletedRows) !== 1 || row.expires_at <= now) return null;
    return row;
  },
};
