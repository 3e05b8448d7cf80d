import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../kernel/clock.js';
import { createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from, lastResetMail, requestReset, resetRows } from '../../../test/helpers/recovery.js';

const PW = 'deny test passphrase 1';
const NEW = 'deny test new passphrase 2';

describe.each(DIALECTS)('"I didn\'t request this" on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const deny = (token: string, ip = freshIp()) => from(h.app, ip, 'POST', '/api/v1/password-resets/deny', { token });
  const confirm = (token: string) => from(h.app, freshIp(), 'POST', '/api/v1/password-resets/confirm', { token, password: NEW });
  const flowOf = (token: string) => h.s.storage.db.selectFrom('recovery_flows').selectAll().where('token_id', '=', token.split('.')[0]!).executeTakeFirstOrThrow();

  it('kills the reset token, records the report and quiets reset mail for the quiet period', async () => {
    const userId = await createUser(h, 'deny@example.test', PW);
    const requester = freshIp();
    await requestReset(h, 'deny@example.test', requester);
    const { token, denyToken } = await lastResetMail(h, 'deny@example.test');
    const d = await deny(denyToken);
    expect(d.status).toBe(204);
    expect(d.headers['cache-control']).toBe('no-store');
    expect(await confirm(token)).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    expect(await flowOf(token)).toMatchObject({ state: 'denied', end_reason: 'reported' });
    const [ev] = await h.s.storage.db.selectFrom('security_events').selectAll().where('user_id', '=', userId).where('type', '=', 'password.reset_denied').execute();
    expect(JSON.parse(ev!.data)).toMatchObject({ report: 'not_requested', stateBefore: 'issued', requestedFrom: requester });

    // Quiet: requests are answered as always, and send nothing for 24 hours.
    for (const wait of [HOUR, 6 * HOUR, 16 * HOUR]) {
      h.clock.advance(wait);
      expect((await requestReset(h, 'deny@example.test')).status).toBe(202);
    }
    expect(await resetRows(h, 'deny@example.test')).toHaveLength(1);
    const decisions = (await h.s.storage.db.selectFrom('security_events').select('data').where('user_id', '=', userId).where('type', '=', 'password.reset_requested').orderBy('id').execute()).map((e) => JSON.parse(e.data).decision);
    expect(decisions).toEqual(['sent', 'quiet', 'quiet', 'quiet']);
    h.clock.advance(HOUR);
    await requestReset(h, 'deny@example.test');
    expect(await resetRows(h, 'deny@example.test')).toHaveLength(2);
  });

  it('lets the owner, signed in, ask for a reset during the quiet period', async () => {
    await createUser(h, 'owner@example.test', PW);
    await requestReset(h, 'owner@example.test');
    expect((await deny((await lastResetMail(h, 'owner@example.test')).denyToken)).status).toBe(204);
    h.clock.advance(10 * MINUTE);
    await requestReset(h, 'owner@example.test');
    expect(await resetRows(h, 'owner@example.test')).toHaveLength(1);
    const session = await signIn(h, 'owner@example.test', PW);
    await requestReset(h, 'owner@example.test', freshIp(), { authorization: `Bearer ${session}` });
    expect(await resetRows(h, 'owner@example.test')).toHaveLength(2);
    // Someone else's session does not lift it.
    await createUser(h, 'stranger@example.test', PW);
    const other = await signIn(h, 'stranger@example.test', PW);
    h.clock.advance(20 * MINUTE);
    await requestReset(h, 'owner@example.test', freshIp(), { authorization: `Bearer ${other}` });
    expect(await resetRows(h, 'owner@example.test')).toHaveLength(2);
    // And the new link works.
    expect((await confirm((await lastResetMail(h, 'owner@example.test')).token)).status).toBe(204);
  });

  it('cannot reset with the deny token, nor deny with the reset token; bad deny tokens get the generic 400', async () => {
    await createUser(h, 'split@example.test', PW);
    await requestReset(h, 'split@example.test');
    const { token, denyToken } = await lastResetMail(h, 'split@example.test');
    const answers = [await deny(token), await deny('garbage'), await deny(`${denyToken.split('.')[0]}.${'B'.repeat(43)}`)];
    for (const a of answers) expect({ ...a.json, requestId: null }).toEqual({ ...answers[0]!.json, requestId: null });
    expect(answers[0]).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    expect(await confirm(denyToken)).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    expect((await flowOf(token)).state).toBe('issued');
  });

  it('takes a second click on the same deny link calmly, and accepts a report after expiry but not after a week', async () => {
    const userId = await createUser(h, 'late@example.test', PW);
    await requestReset(h, 'late@example.test');
    const first = await lastResetMail(h, 'late@example.test');
    expect((await deny(first.denyToken)).status).toBe(204);
    expect((await deny(first.denyToken)).status).toBe(204);
    expect(await h.s.storage.db.selectFrom('security_events').select('id').where('user_id', '=', userId).where('type', '=', 'password.reset_denied').execute()).toHaveLength(1);

    h.clock.advance(DAY + MINUTE);
    await requestReset(h, 'late@example.test');
    const second = await lastResetMail(h, 'late@example.test');
    h.clock.advance(2 * HOUR); // the reset link expired long ago; the report still counts
    expect((await deny(second.denyToken)).status).toBe(204);
    expect(await flowOf(second.token)).toMatchObject({ state: 'denied' });

    h.clock.advance(DAY + MINUTE);
    await requestReset(h, 'late@example.test');
    const third = await lastResetMail(h, 'late@example.test');
    h.clock.advance(7 * DAY);
    expect(await deny(third.denyToken)).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
  });

  it('kills a newer live token too, and records a report after a completed reset', async () => {
    const userId = await createUser(h, 'both@example.test', PW);
    await requestReset(h, 'both@example.test');
    const first = await lastResetMail(h, 'both@example.test');
    h.clock.advance(3 * MINUTE);
    await requestReset(h, 'both@example.test');
    const second = await lastResetMail(h, 'both@example.test');
    expect(first.token).not.toBe(second.token);
    // Denying the older (already superseded) mail also kills the newer link.
    expect((await deny(first.denyToken)).status).toBe(204);
    expect(await confirm(second.token)).toMatchObject({ status: 400 });
    expect((await flowOf(second.token)).state).toBe('superseded');

    h.clock.advance(DAY + MINUTE);
    await requestReset(h, 'both@example.test');
    const third = await lastResetMail(h, 'both@example.test');
    expect((await confirm(third.token)).status).toBe(204);
    expect((await deny(third.denyToken)).status).toBe(204);
    expect((await flowOf(third.token)).state).toBe('used');
    const reports = await h.s.storage.db.selectFrom('security_events').select('data').where('user_id', '=', userId).where('type', '=', 'password.reset_denied').orderBy('id').execute();
    expect(JSON.parse(reports.at(-1)!.data)).toMatchObject({ stateBefore: 'used' });
  });

  it('rate-limits deny attempts per source', async () => {
    const ip = freshIp();
    for (let i = 0; i < 10; i++) expect((await deny(`nope${i}`, ip)).status).toBe(400);
    expect(await deny('nope', ip)).toMatchObject({ status: 429, json: { code: 'rate_limited' } });
  });
});
