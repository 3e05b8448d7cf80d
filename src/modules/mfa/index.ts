/** The MFA and password-hardening module: TOTP, recovery codes, passkeys, password change, breached list. */
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.js';
import type { SecretBox } from '../../kernel/crypto.js';
import type { Database } from '../../storage/schema.js';
import type { AccountsService, BreachedPasswords, PasswordHasher } from '../accounts/index.js';
import type { RateLimiter } from '../guard/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import type { Outbox } from '../notifications/index.js';
import type { SecondFactor, SessionsService, SignInFlow } from '../sessions/index.js';
import { LocalBreachedList, PwnedRangeList } from './breached.js';
import { PasskeyService } from './passkeys.js';
import { PasswordChange } from './password-change.js';
import { MfaService } from './service.js';

export { MfaService, type MfaDeps, type ChangeOptions, type TotpEnrolment } from './service.js';
export { PasskeyService, type PasskeySignIn } from './passkeys.js';
export { PasswordChange } from './password-change.js';
export { wipeFactors } from './wipe.js';
export { LocalBreachedList, PwnedRangeList, buildPrefixSet, hasPrefix, loadZxcvbnPasswords, type RangeOptions } from './breached.js';
export * from './model.js';

export interface MfaModule {
  factors: MfaService;
  passkeys: PasskeyService;
  passwords: PasswordChange;
  /** The SecondFactor port (sign-in, password reset). */
  secondFactor: SecondFactor;
}

export interface MfaModuleDeps {
  db: Kysely<Database>;
  clock: Clock;
  box: SecretBox;
  events: SecurityEvents;
  outbox: Outbox;
  limiter: RateLimiter;
  accounts: AccountsService;
  sessions: SessionsService;
  hasher: PasswordHasher;
  breached: BreachedPasswords;
  publicUrl: string;
  /** Ends passkey sign-ins like password ones (SignInFlow.completeSignIn; main binds it late). */
  signIns: Pick<SignInFlow, 'completeSignIn'>;
}

export function createMfa(d: MfaModuleDeps): MfaModule {
  const factors = new MfaService({ db: d.db, clock: d.clock, box: d.box, events: d.events, outbox: d.outbox, limiter: d.limiter, accounts: d.accounts, sessions: d.sessions });
  const passkeys = new PasskeyService({ db: d.db, clock: d.clock, events: d.events, limiter: d.limiter, accounts: d.accounts, sessions: d.sessions, mfa: factors, publicUrl: d.publicUrl, signIns: d.signIns });
  const passwords = new PasswordChange({ db: d.db, clock: d.clock, accounts: d.accounts, sessions: d.sessions, events: d.events, outbox: d.outbox, hasher: d.hasher, breached: d.breached, mfa: factors });
  return { factors, passkeys, passwords, secondFactor: factors.secondFactor };
}

/** The breached-password check `main.ts` wires by default: the local list, then the range API when configured. */
export function defaultBreachedList(pwnedRangeUrl: string | null, onError?: (reason: string) => void): BreachedPasswords {
  const local = new LocalBreachedList();
  return pwnedRangeUrl ? new PwnedRangeList(pwnedRangeUrl, local, { timeoutMs: 2000, ...(onError ? { onError } : {}) }) : local;
}
