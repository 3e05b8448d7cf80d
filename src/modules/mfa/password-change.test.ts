import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE } from '../../kernel/clock.js';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { lastResetMail, requestReset } from '../../../test/helpers/recovery.js';

const OLD = 'the old passphrase 1';
const NEW = 'a brand new passphrase 2';
const UA = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' };

describe.each(DIALECTS)('password change on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('changes the password, signs out other sessions, records the event and queues the notice', async () => {
    const email = 'pw@example.test';
    const userId = await createUser(h, email, OLD);
    const mine = await signIn(h, email, OLD, {}, UA);
    const other = await signIn(h, email, OLD);
    const r = await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: NEW }, { ...bearer(mine), ...UA });
    expect(r.status).toBe(204);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(other))).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(mine))).status).toBe(200);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: OLD })).status).toBe(401);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: NEW })).status).toBe(201);
    const events = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(mine));
    expect(events.json.events.find((e: any) => e.type === 'password.changed')).toMatchObject({ data: { via: 'change', revokedSessions: 1 } });
    const notice = await h.s.storage.db.selectFrom('outbox').selectAll().where('user_id', '=', userId).where('type', '=', 'password_changed').executeTakeFirstOrThrow();
    expect(notice).toMatchObject({ channel: 'email', lane: 'priority', recipient: email, cause_kind: 'user', state: 'queued' });
    expect(JSON.parse(notice.payload)).toEqual({ email, at: new Date(h.clock.now()).toISOString(), device: 'Chrome 120 on Linux', ip: '127.0.0.1' });
    expect(notice.payload).not.toContain(NEW);
    const row = await h.s.storage.db.selectFrom('users').select(['password_hash', 'password_changed_at']).where('id', '=', userId).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(Number(row.password_changed_at)).toBe(h.clock.now());
  });

  it('keeps the other sessions when asked to', async () => {
    const email = 'keep@example.test';
    await createUser(h, email, OLD);
    const mine = await signIn(h, email, OLD);
    const other = await signIn(h, email, OLD);
    expect((await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: NEW, revokeOtherSessions: false }, bearer(mine))).status).toBe(204);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(other))).status).toBe(200);
  });

  it('refuses a wrong current password, limits guesses per account, and checks the new one', async () => {
    const email = 'guess@example.test';
    await createUser(h, email, OLD);
    const mine = await signIn(h, email, OLD);
    const short = await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: 'short' }, bearer(mine));
    expect(short).toMatchObject({ status: 400, json: { code: 'weak_password', reason: 'too_short' } });
    const same = await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: email }, bearer(mine));
    expect(same).toMatchObject({ status: 400, json: { reason: 'same_as_email' } });
    for (let i = 0; i < 5; i++) {
      const r = await call(h.app, 'POST', '/api/v1/me/password', { current: `wrong guess ${i} here`, password: NEW }, bearer(mine));
      expect(r).toMatchObject({ status: 403, json: { code: 'forbidden', reason: 'wrong_password' } });
    }
    const limited = await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: NEW }, bearer(mine));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    h.clock.advance(20 * MINUTE);
    expect((await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: NEW }, bearer(mine))).status).toBe(204);
  });

  it('kills the reset links that were live, in the same transaction (a change through the API)', async () => {
    const email = 'live-link@example.test';
    const userId = await createUser(h, email, OLD);
    const mine = await signIn(h, email, OLD);
    // Someone with the mailbox, or the owner earlier, has a live reset link.
    await requestReset(h, email);
    const { token } = await lastResetMail(h, email);
    expect((await h.s.storage.db.selectFrom('recovery_flows').select('state').where('user_id', '=', userId).execute())).toEqual([{ state: 'issued' }]);
    expect((await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: NEW }, bearer(mine))).status).toBe(204);
    const flows = await h.s.storage.db.selectFrom('recovery_flows').select(['state', 'end_reason']).where('user_id', '=', userId).execute();
    expect(flows).toEqual([{ state: 'superseded', end_reason: 'password_changed' }]);
    // The link from before the change cannot set a password any more.
    const late = await call(h.app, 'POST', '/api/v1/password-resets/confirm', { token, password: 'someone else chose 3' });
    expect(late).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: NEW })).status).toBe(201);
  });

  it('needs a session', async () => {
    expect((await call(h.app, 'POST', '/api/v1/me/password', { current: OLD, password: NEW })).status).toBe(401);
  });
});
