/**
 * Passkeys (WebAuthn, @simplewebauthn/server). Invariants:
 * - rpID is the host of FLOODGATE_PUBLIC_URL and the only accepted origin is that URL;
 * - every ceremony has a server-side challenge (only its sha256 is stored), single use (taken
 *   by a committed DELETE before the response is verified, so a failed try burns it too), and
 *   dead after 5 minutes; a registration challenge belongs to one user and one session;
 * - user verification is required in both ceremonies: a passkey stands alone as a multi-factor
 *   authenticator (possession + PIN/biometric), so it can replace password + code;
 * - a signature counter that does not grow (when the authenticator keeps one) is refused: clone;
 * - sign-in options never depend on an account: discoverable credentials only (empty
 *   allowCredentials), so they cannot tell who has an account or a passkey; registration
 *   requires a discoverable (resident) credential, so every registered passkey can sign in;
 * - sign-in limits count per source (IPv4 address, IPv6 /64) and per network (/24, /56), like
 *   the guard's: rotating addresses inside one's own /64 buys no budget;
 * - a sign-in challenge is issued for one place: the account's sign-in ('authenticate') or the
 *   operator console ('console'); an assertion made for one is refused by the other.
 */
import type { Kysely } from 'kysely';
import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type AuthenticatorTransportFuture, type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import { sha256Hex } from '../../kernel/crypto.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Database, Db } from '../../storage/schema.js';
import type { AccountsService, UserRow } from '../accounts/index.js';
import { networkOf, sourceKey, type LimitRule, type RateLimiter } from '../guard/index.js';
import type { SecurityEvents } from '../incidents/index.js';
import { describeDevice, type SessionsService, type SignInFlow } from '../sessions/index.js';
import {
  CHALLENGE_TTL_MS, MAX_PASSKEYS_PER_ACCOUNT, PASSKEY_FAILURE_NETWORK_RULE, PASSKEY_FAILURE_RULE, PASSKEY_NAME_MAX,
  PASSKEY_OPTIONS_NETWORK_RULE, PASSKEY_OPTIONS_RULE,
  type Actor, type PasskeyView,
} from './model.js';
import { refuseWhenLimited, type ChangeOptions, type MfaService } from './service.js';
import { mfaStore, type ChallengePurpose, type PasskeyRow } from './store.js';

export interface PasskeyDeps {
  db: Kysely<Database>;
  clock: Clock;
  events: SecurityEvents;
  limiter: RateLimiter;
  accounts: AccountsService;
  sessions: SessionsService;
  mfa: MfaService;
  publicUrl: string;
  /** Ends a passkey sign-in the way every sign-in ends (the sessions module's SignInFlow). */
  signIns: Pick<SignInFlow, 'completeSignIn'>;
}

export interface PasskeySignIn {
  token: string;
  sessionId: string;
  expiresAt: number;
  userId: string;
  /** The device cookie's new value. */
  device: string;
}

const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

export function cleanPasskeyName(raw: string | undefined, fallback: string): string {
  // Control characters and surrounding space go: the name is shown in lists and in mail.
  const s = (raw ?? '').replace(/[\p{Cc}\p{Cf}]/gu, ' ').replace(/\s+/g, ' ').trim().slice(0, PASSKEY_NAME_MAX);
  return s || fallback.slice(0, PASSKEY_NAME_MAX);
}

/** The challenge a client signed, read from its clientDataJSON; null when it cannot be read. */
function challengeOf(clientDataJSON: unknown): string | null {
  if (typeof clientDataJSON !== 'string' || clientDataJSON.length > 4096) return null;
  try {
    const c = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof c.challenge === 'string' && c.challenge.length >= 16 && c.challenge.length <= 128 ? c.challenge : null;
  } catch {
    return null;
  }
}

function view(r: PasskeyRow): PasskeyView {
  return {
    id: r.id, name: r.name, createdAt: new Date(Number(r.created_at)).toISOString(),
    lastUsedAt: r.last_used_at === null ? null : new Date(Number(r.last_used_at)).toISOString(),
    deviceType: r.device_type, backedUp: r.backed_up === 1, transports: JSON.parse(r.transports) as string[],
  };
}

export class PasskeyService {
  readonly rpID: string;
  readonly origin: string;

  constructor(private readonly d: PasskeyDeps) {
    this.rpID = new URL(d.publicUrl).hostname;
    this.origin = d.publicUrl;
  }

  // --- registration (signed in, recent authentication) ----------------------------------------

  async registrationOptions(actor: Actor, opts: ChangeOptions, ctx: RequestContext): Promise<PublicKeyCredentialCreationOptionsJSON> {
    await this.d.mfa.requireRecentAuth(actor, opts.password, ctx);
    const user = await this.d.accounts.findById(actor.userId);
    if (!user) throw new AppError('unauthenticated');
    const existing = await mfaStore.passkeysOf(this.d.db, actor.userId);
    if (existing.length >= MAX_PASSKEYS_PER_ACCOUNT) throw new AppError('conflict', `At most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys per account; remove one first.`);
    const options = await generateRegistrationOptions({
      rpName: 'Floodgate', rpID: this.rpID, userName: user.email, userDisplayName: user.email,
      userID: new Uint8Array(Buffer.from(user.id, 'utf8')),
      timeout: CHALLENGE_TTL_MS, attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.credential_id, transports: JSON.parse(p.transports) as AuthenticatorTransportFuture[] })),
      // Discoverable only: sign-in never lists an account's credentials, so a key that cannot be found without them could not sign in.
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
    const now = this.d.clock.now();
    await mfaStore.putChallenge(this.d.db, { challenge_hash: sha256Hex(options.challenge), purpose: 'register', user_id: actor.userId, session_id: actor.sessionId, created_at: now, expires_at: now + CHALLENGE_TTL_MS });
    return options;
  }

  async verifyRegistration(actor: Actor, response: RegistrationResponseJSON, opts: { name?: string | undefined; revokeOtherSessions?: boolean | undefined }, ctx: RequestContext): Promise<{ passkey: PasskeyView; recoveryCodes: string[] | null }> {
    const refused = (why: string) => new AppError('invalid_token', `The passkey could not be registered: ${why}. Start again.`);
    const challenge = challengeOf(response?.response?.clientDataJSON);
    if (!challenge) throw refused('the response is not a WebAuthn registration');
    const now = this.d.clock.now();
    const ch = await mfaStore.takeChallenge(this.d.db, sha256Hex(challenge), 'register', now);
    // The challenge was issued under a recent authentication of this very session (5 minutes ago at most).
    if (!ch || ch.user_id !== actor.userId || ch.session_id !== actor.sessionId) throw refused('unknown, used or expired challenge');
    let info;
    try {
      const v = await verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: this.origin, expectedRPID: this.rpID, requireUserVerification: true });
      if (!v.verified) throw new Error('not verified');
      info = v.registrationInfo;
    } catch (e) {
      throw refused(e instanceof Error ? e.message.slice(0, 200) : 'verification failed');
    }
    const user = await this.d.accounts.findById(actor.userId);
    if (!user) throw new AppError('unauthenticated');
    const transports = (response.response.transports ?? info.credential.transports ?? []).filter((t) => TRANSPORTS.has(t));
    const row: PasskeyRow = {
      id: newId(now), user_id: actor.userId, credential_id: info.credential.id,
      public_key: Buffer.from(info.credential.publicKey).toString('base64url'), counter: info.credential.counter,
      transports: JSON.stringify(transports), name: cleanPasskeyName(opts.name, describeDevice(ctx.userAgent)),
      device_type: info.credentialDeviceType, backed_up: info.credentialBackedUp ? 1 : 0, aaguid: info.aaguid,
      created_at: now, last_used_at: null,
    };
    return this.d.db.transaction().execute(async (trx) => {
      if ((await mfaStore.passkeyCount(trx, actor.userId)) >= MAX_PASSKEYS_PER_ACCOUNT) throw new AppError('conflict', `At most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys per account.`);
      const wasOn = await this.d.mfa.enabled(trx, actor.userId);
      const left = await mfaStore.recoveryCodesLeft(trx, actor.userId);
      if (!(await mfaStore.insertPasskey(trx, row))) throw new AppError('conflict', 'This passkey is already registered.');
      // MFA turns on with the first factor; recovery codes come with it so a lost device is not a lost account.
      const recoveryCodes = !wasOn || left === 0 ? await this.d.mfa.issueRecoveryCodes(trx, actor.userId) : null;
      await this.d.mfa.recordChange(trx, actor, user.email, 'passkey_added', 'mfa.passkey_added', ctx, { revokeOtherSessions: opts.revokeOtherSessions, data: { passkey: row.id, name: row.name } });
      return { passkey: view(row), recoveryCodes };
    });
  }

  // --- management -------------------------------------------------------------------------------

  async list(userId: string): Promise<PasskeyView[]> {
    return (await mfaStore.passkeysOf(this.d.db, userId)).map(view);
  }

  async rename(userId: string, id: string, name: string): Promise<PasskeyView> {
    const clean = cleanPasskeyName(name, '');
    if (!clean) throw new AppError('invalid_request', 'Give the passkey a name.', { extra: { errors: [{ field: 'name', message: 'Give the passkey a name.' }] } });
    if (!(await mfaStore.renamePasskey(this.d.db, userId, id, clean))) throw new AppError('not_found', 'No passkey of yours has this id.');
    const row = (await mfaStore.passkeysOf(this.d.db, userId)).find((p) => p.id === id);
    if (!row) throw new AppError('not_found', 'No passkey of yours has this id.');
    return view(row);
  }

  async remove(actor: Actor, id: string, opts: ChangeOptions, ctx: RequestContext): Promise<void> {
    await this.d.mfa.requireRecentAuth(actor, opts.password, ctx);
    const user = await this.d.accounts.findById(actor.userId);
    if (!user) throw new AppError('unauthenticated');
    await this.d.db.transaction().execute(async (trx) => {
      if (!(await mfaStore.deletePasskey(trx, actor.userId, id))) throw new AppError('not_found', 'No passkey of yours has this id.');
      const still = await this.d.mfa.afterFactorRemoved(trx, actor.userId);
      await this.d.mfa.recordChange(trx, actor, user.email, 'passkey_removed', 'mfa.passkey_removed', ctx, { revokeOtherSessions: opts.revokeOtherSessions, data: { passkey: id, mfaStillOn: still } });
    });
  }

  // --- sign-in with a passkey (anonymous) -------------------------------------------------------

  /**
   * Options for a passkey sign-in (the account's, or the console's): discoverable credentials only.
   * Nothing about any account goes in (no allowCredentials), so the answer is the same for everyone.
   */
  async authenticationOptions(ctx: RequestContext, purpose: Exclude<ChallengePurpose, 'register'> = 'authenticate'): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const wait = Math.max(
      await this.spend(`passkey-options:${sourceKey(ctx.ip)}`, PASSKEY_OPTIONS_RULE),
      await this.spend(`passkey-options-net:${networkOf(ctx.ip)}`, PASSKEY_OPTIONS_NETWORK_RULE),
    );
    if (wait > 0) {
      throw new AppError('rate_limited', 'Too many sign-in attempts. Try again later.', { headers: { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) } });
    }
    const options = await generateAuthenticationOptions({ rpID: this.rpID, timeout: CHALLENGE_TTL_MS, userVerification: 'required' });
    const now = this.d.clock.now();
    await mfaStore.putChallenge(this.d.db, { challenge_hash: sha256Hex(options.challenge), purpose, user_id: null, session_id: null, created_at: now, expires_at: now + CHALLENGE_TTL_MS });
    return options;
  }

  /** Count one against `key`; the wait in ms when that passes the rule's limit, else 0. */
  private async spend(key: string, rule: LimitRule): Promise<number> {
    const hit = await this.d.limiter.hit(key, rule);
    return hit.allowed ? 0 : hit.retryAfterMs;
  }

  async authenticate(response: AuthenticationResponseJSON, ctx: RequestContext): Promise<PasskeySignIn> {
    // The same ending as a password sign-in: session, event and sign-in observers (new-device notice).
    const { user, value } = await this.assertion(response, ctx, 'authenticate', (trx, u, passkeyId) => this.d.signIns.completeSignIn(trx, u, ctx, 'passkey', { passkey: passkeyId }));
    return { token: value.token, sessionId: value.id, expiresAt: value.expiresAt, userId: user.id, device: value.device };
  }

  /**
   * Verifies a passkey assertion answering a challenge issued for `purpose`, then runs `finish`
   * in the transaction that records the passkey's use (its counter), so the two commit together.
   * Any failure is one generic 401 (invalid_credentials), counted per source; an account whose
   * address was never confirmed fails. A lock (password failures) does not stop a passkey.
   */
  async assertion<T>(response: AuthenticationResponseJSON, ctx: RequestContext, purpose: Exclude<ChallengePurpose, 'register'>, finish: (trx: Db, user: UserRow, passkeyId: string) => Promise<T>): Promise<{ user: UserRow; value: T }> {
    // Per /64 and per network, like the guard: one IPv6 client cannot rotate addresses for fresh budgets.
    const failKey = `passkey-fail:${sourceKey(ctx.ip)}`;
    const netKey = `passkey-fail-net:${networkOf(ctx.ip)}`;
    await refuseWhenLimited(this.d.limiter, failKey, PASSKEY_FAILURE_RULE, 'passkey sign-ins');
    await refuseWhenLimited(this.d.limiter, netKey, PASSKEY_FAILURE_NETWORK_RULE, 'passkey sign-ins');
    let knownUser: string | null = null;
    const fail = async (reason: string): Promise<never> => {
      await this.d.limiter.hit(failKey, PASSKEY_FAILURE_RULE);
      await this.d.limiter.hit(netKey, PASSKEY_FAILURE_NETWORK_RULE);
      if (knownUser) await this.d.events.record(this.d.db, 'signin.failed', knownUser, ctx, { reason: 'passkey', detail: reason, ...(purpose === 'console' ? { where: 'console' } : {}) });
      // One answer for every failure: unknown passkey, wrong signature, expired challenge, unconfirmed address.
      throw new AppError('invalid_credentials', 'The passkey could not be verified. Try again.');
    };
    const challenge = challengeOf(response?.response?.clientDataJSON);
    if (!challenge) return fail('no challenge');
    const now = this.d.clock.now();
    const ch = await mfaStore.takeChallenge(this.d.db, sha256Hex(challenge), purpose, now);
    if (!ch) return fail('unknown, used or expired challenge');
    const cred = typeof response.id === 'string' && response.id.length <= 1024 ? await mfaStore.passkeyByCredential(this.d.db, response.id) : undefined;
    if (!cred) return fail('unknown credential');
    knownUser = cred.user_id;
    const handle = response.response.userHandle;
    if (handle && handle !== Buffer.from(cred.user_id, 'utf8').toString('base64url')) return fail('user handle mismatch');
    const user = await this.d.accounts.findById(cred.user_id);
    // An address never confirmed gets no session, however proven (a squatter's passkey). The lock
    // is not checked: it counts password guesses, which a passkey does not depend on.
    if (!user || user.email_verified_at === null) return fail(user ? 'unverified' : 'no account');
    let newCounter: number;
    try {
      const v = await verifyAuthenticationResponse({
        response, expectedChallenge: challenge, expectedOrigin: this.origin, expectedRPID: this.rpID, requireUserVerification: true,
        credential: { id: cred.credential_id, publicKey: new Uint8Array(Buffer.from(cred.public_key, 'base64url')), counter: Number(cred.counter), transports: JSON.parse(cred.transports) as AuthenticatorTransportFuture[] },
      });
      if (!v.verified) throw new Error('not verified');
      newCounter = v.authenticationInfo.newCounter;
    } catch (e) {
      return fail(e instanceof Error ? e.message.slice(0, 120) : 'verification failed');
    }
    const result = await this.d.db.transaction().execute(async (trx) => {
      if (!(await mfaStore.usePasskey(trx, cred.id, Number(cred.counter), newCounter, now))) return null;
      return { value: await finish(trx, user, cred.id) };
    });
    if (!result) return fail('counter did not grow');
    return { user, value: result.value };
  }
}
