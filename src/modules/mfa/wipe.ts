/**
 * Every factor of an account, gone at once: for an address proven by its mailbox for the first
 * time (AccountsService.proveMailbox). What was enrolled before that proof was enrolled by
 * whoever typed the address, who need not be its owner: a squatter's authenticator app or passkey
 * must neither lock the owner out of a reset nor keep the squatter a way in.
 */
import type { Db } from '../../storage/schema.js';

/** Deletes the account's TOTP (active or pending), passkeys, recovery codes and passkey challenges in `db`'s transaction. */
export async function wipeFactors(db: Db, userId: string): Promise<{ totp: number; passkeys: number; recoveryCodes: number }> {
  const n = (r: { numDeletedRows: bigint }) => Number(r.numDeletedRows);
  const totp = n(await db.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst());
  const passkeys = n(await db.deleteFrom('mfa_passkeys').where('user_id', '=', userId).executeTakeFirst());
  const recoveryCodes = n(await db.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).executeTakeFirst());
  await db.deleteFrom('mfa_challenges').where('user_id', '=', userId).execute();
  return { totp, passkeys, recoveryCodes };
}
