/**
 * Lockout abuse (issue 13, item 4): a stranger's slow guessing must not keep an owner throttled or
 * locked out. Device cookies (OWASP) keep the owner's browsers usable, a reset or a password change
 * ends the failure count, and a passkey does not depend on the password's failures. Each test
 * performs the attack over HTTP with the manual clock, on every database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR, MINUTE } from '../../kernel/clock.js';
import { DEVICE_COOKIE } from '../../http/context.js';
import { LOCK_AFTER } from '../guard/index.js';
import { bearer, call, createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from, lastResetMail, requestReset } from '../../../test/helpers/recovery.js';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.js';

const PW = 'the owner knows this one 1';
const NEW_PW = 'a brand new passphrase 22';

describe.each(DIALECTS)('lockout abuse on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const lockedAt = async (userId: string) => (await h.s.accounts.findById(userId))!.locked_at;
  /** A sign-in from a fresh address, with the device cookie given (or none). */
  const signInWith = (email: string, password: string, device: string | null = null) =>
    from(h.app, freshIp(), 'POST', '/api/v1/sessions', { email, password }, device ? { cookie: `${DEVICE_COOKIE}=${encodeURIComponent(device)}` } : {});
  const deviceOf = (r: { headers: Record<string, unknown> }) =>
    decodeURIComponent(([] as string[]).concat(r.headers['set-cookie'] as string[]).find((c) => c.startsWith(`${DEVICE_COOKIE}=`))!.split(';')[0]!.slice(DEVICE_COOKIE.length + 1));

  /** The stranger: one wrong guess every `everyMs`, each from a new address, until the account locks. */
  async function guessUntilLocked(email: string, userId: string, everyMs = 15 * MINUTE): Promise<number> {
    let guesses = 0;
    while ((await lockedAt(userId)) === null) {
      h.clock.advance(everyMs);
      const r = await signInWith(email, `wrong guess ${guesses}`);
      expect(r.status).toBe(401);
      guesses++;
      if (guesses > LOCK_AFTER) throw new Error('the account never locked');
    }
    return guesses;
  }

  it('keeps the owner\'s browser working while a stranger\'s slow guessing throttles and then locks the account', async () => {
    const email = 'slow-guessing@example.test';
    const userId = await createUser(h, email, PW);
    const first = await signInWith(email, PW);
    expect(first.status).toBe(201);
    const device = deviceOf(first);

    // Ten slow guesses: the account is throttled for any browser it does not know...
    for (let i = 0; i < 10; i++) {
      h.clock.advance(15 * MINUTE);
      expect((await signInWith(email, `early guess ${i}`)).status).toBe(401);
    }
    const stranger = await signInWith(email, PW);
    expect(stranger.status).toBe(429);
    // ...but not for the owner's browser, whose success does not hand the guesser a fresh count.
    const owner = await signInWith(email, PW, device);
    expect(owner.status).toBe(201);
    expect((await signInWith(email, PW)).status).toBe(429);

    // The guessing goes on for a day, and the account locks.
    const guesses = await guessUntilLocked(email, userId);
    expect(10 + guesses).toBe(LOCK_AFTER);
    expect((await signInWith(email, PW, device)).status).toBe(201); // the owner's browser is not a stranger, even now
    h.clock.advance(15 * MINUTE);
    expect((await signInWith(email, PW)).status).toBe(401); // locked, for browsers it does not know

    // The owner's browser has a small budget of its own: past it, it is treated like any client.
    for (let i = 0; i < 10; i++) expect((await signInWith(email, `owner typo ${i}`, device)).status).toBe(401);
    h.clock.advance(15 * MINUTE);
    expect((await signInWith(email, PW, device)).status).toBe(401);
    h.clock.advance(2 * HOUR);
    expect((await signInWith(email, PW, device)).status).toBe(201);
    const failed = (await h.s.events.listForUser(h.s.storage.db, userId, 200)).filter((e) => e.type === 'signin.failed');
    expect(failed.filter((e) => e.data.trustedDevice === true)).toHaveLength(10);
  });

  it('lets a passkey sign in while the stranger\'s password guesses hold the account locked', async () => {
    const email = 'passkey-locked@example.test';
    const userId = await createUser(h, email, PW);
    const s = await signInWith(email, PW);
    const key = new SoftAuthenticator('floodgate.test', 'http://floodgate.test');
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(s.json.token));
    expect((await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json) }, bearer(s.json.token))).status).toBe(201);
    await guessUntilLocked(email, userId, 16 * MINUTE);
    const o = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/passkey/options', {});
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/passkey', { response: key.assert(o.json) });
    expect(r.status).toBe(201);
    expect(await lockedAt(userId)).not.toBeNull(); // still locked for password guessers
  });

  it('ends the failure count with a reset: the stranger\'s next guess does not lock the owner out again', async () => {
    const email = 'reset-ends-count@example.test';
    const userId = await createUser(h, email, PW);
    await guessUntilLocked(email, userId, 16 * MINUTE);
    await requestReset(h, email);
    const { token } = await lastResetMail(h, email);
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets/confirm', { token, password: NEW_PW })).status).toBe(204);
    expect(await lockedAt(userId)).toBeNull();
    // The stranger keeps guessing, right away: a fresh count, so no lock and no delay yet.
    for (let i = 0; i < 4; i++) expect((await signInWith(email, `after reset ${i}`)).status).toBe(401);
    expect(await lockedAt(userId)).toBeNull();
    // The owner, from a browser the account never saw, is in at once.
    expect((await signInWith(email, NEW_PW)).status).toBe(201);
  });

  it('ends the failure count with a password change', async () => {
    const email = 'change-ends-count@example.test';
    await createUser(h, email, PW);
    const s = await signInWith(email, PW);
    expect(s.status).toBe(201);
    for (let i = 0; i < 8; i++) {
      h.clock.advance(MINUTE);
      expect((await signInWith(email, `guess ${i}`)).status).toBe(401);
    }
    expect((await signInWith(email, PW)).status).toBe(429); // a browser the account does not know is slowed down
    // The owner changes the password from their signed-in session.
    expect((await call(h.app, 'POST', '/api/v1/me/password', { current: PW, password: NEW_PW }, bearer(s.json.token))).status).toBe(204);
    // Failures from before the change do not count: a new browser is neither delayed nor refused.
    expect((await signInWith(email, NEW_PW)).status).toBe(201);
  });
});
