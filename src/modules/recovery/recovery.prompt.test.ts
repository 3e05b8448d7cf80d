/**
 * The in-app "was it you?" reset prompt, answered through the JSON API: only a prompt really put
 * to the account, by its id, once. A stolen session must not be able to kill the owner's reset
 * links at will (issue 13, item 8).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from, lastResetMail, requestReset, resetRows } from '../../../test/helpers/recovery.js';

const PW = 'prompt test passphrase 1';
const NEW = 'prompt test new passphrase 2';
const OP = { id: 'test', name: 'test' };

describe.each(DIALECTS)('reset prompts on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const answer = (token: string, body: Record<string, unknown>) => call(h.app, 'POST', '/api/v1/me/reset-prompts/answer', body, bearer(token));
  const confirm = (token: string) => from(h.app, freshIp(), 'POST', '/api/v1/password-resets/confirm', { token, password: NEW });
  const denials = async (userId: string) => (await h.s.storage.db.selectFrom('security_events').select('id').where('user_id', '=', userId).where('type', '=', 'password.reset_denied').execute()).length;
  const prompts = async (token: string) => (await call(h.app, 'GET', '/api/v1/me/notifications', undefined, bearer(token))).json.notifications.filter((n: any) => n.type === 'reset_prompt');

  /** A reset request decided as a prompt (the reset flow in-app only), delivered to the account's inbox. */
  async function prompted(email: string): Promise<void> {
    await h.s.outbound.setKillSwitch('flow:reset', 'inbox_only', OP, 'test prompts');
    try {
      expect((await requestReset(h, email)).status).toBe(202);
      await h.s.courier.drain();
    } finally {
      await h.s.outbound.setKillSwitch('flow:reset', null, OP, 'done');
    }
  }

  it('refuses an answer without a prompt: a session alone cannot kill the owner\'s live reset link', async () => {
    const userId = await createUser(h, 'no-prompt@example.test', PW);
    const stolen = await signIn(h, 'no-prompt@example.test', PW);
    expect((await requestReset(h, 'no-prompt@example.test')).status).toBe(202);
    const { token } = await lastResetMail(h, 'no-prompt@example.test');
    // The old body (no prompt id), a made-up id, and an id of some other inbox entry: refused, no effect.
    expect(await answer(stolen, { answer: 'no' })).toMatchObject({ status: 400, json: { code: 'invalid_request' } });
    for (let i = 0; i < 3; i++) {
      const r = await answer(stolen, { promptId: `01JX${'0'.repeat(20)}${i}`, answer: 'no' });
      expect(r).toMatchObject({ status: 404, json: { code: 'not_found' } });
      expect(String(r.headers['content-type'])).toMatch(/^application\/problem\+json/);
    }
    await h.s.storage.db.insertInto('inbox').values({ id: 'not-a-prompt-1', user_id: userId, type: 'new_signin', title: 'New sign-in', body: '.', data: '{}', created_at: h.clock.now(), read_at: null }).execute();
    expect((await answer(stolen, { promptId: 'not-a-prompt-1', answer: 'no' })).status).toBe(404);
    expect(await denials(userId)).toBe(0);
    const quiet = await h.s.storage.db.selectFrom('recovery_accounts').select('quiet_until').where('user_id', '=', userId).executeTakeFirst();
    expect(quiet?.quiet_until ?? null).toBeNull();
    // The owner's link still works.
    expect((await confirm(token)).status).toBe(204);
  });

  it('answers one prompt once, by its id from the notifications list; a second answer is 409 and changes nothing', async () => {
    const email = 'once@example.test';
    const userId = await createUser(h, email, PW);
    const session = await signIn(h, email, PW);
    await prompted(email);
    const [p] = await prompts(session);
    expect(p).toMatchObject({ type: 'reset_prompt', readAt: null, id: expect.any(String) });
    expect(await resetRows(h, email)).toHaveLength(0);

    expect((await answer(session, { promptId: p.id, answer: 'yes' })).status).toBe(204);
    await h.s.resetIntake.processOnce();
    const { token } = await lastResetMail(h, email);
    const [after] = await prompts(session);
    expect(after.readAt).not.toBeNull();

    // Answering the same prompt again (either way) is refused, and the link mailed for "yes" survives.
    for (const a of ['no', 'yes'] as const) expect(await answer(session, { promptId: p.id, answer: a })).toMatchObject({ status: 409, json: { code: 'conflict' } });
    await h.s.resetIntake.processOnce();
    expect(await resetRows(h, email)).toHaveLength(1);
    expect(await denials(userId)).toBe(0);
    expect((await confirm(token)).status).toBe(204);
  });

  it('"no" to a real prompt kills live links once and is recorded with the prompt; two racing answers act once', async () => {
    const email = 'race@example.test';
    const userId = await createUser(h, email, PW);
    const session = await signIn(h, email, PW);
    await requestReset(h, email);
    const { token } = await lastResetMail(h, email);
    await prompted(email);
    const [p] = await prompts(session);
    const both = await Promise.all([answer(session, { promptId: p.id, answer: 'no' }), answer(session, { promptId: p.id, answer: 'no' })]);
    expect(both.map((r) => r.status).sort()).toEqual([204, 409]);
    const events = await h.s.storage.db.selectFrom('security_events').select('data').where('user_id', '=', userId).where('type', '=', 'password.reset_denied').execute();
    expect(events.map((e) => JSON.parse(e.data))).toEqual([expect.objectContaining({ via: 'in_app_prompt', prompt: p.id, killed: 1 })]);
    expect(await confirm(token)).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
  });

  it('refuses another account\'s prompt id as unknown, and leaves that prompt to its owner', async () => {
    const email = 'victim-prompt@example.test';
    const userId = await createUser(h, email, PW);
    const owner = await signIn(h, email, PW);
    await createUser(h, 'mallory-prompt@example.test', PW);
    const mallory = await signIn(h, 'mallory-prompt@example.test', PW);
    await prompted(email);
    const [p] = await prompts(owner);
    const foreign = await answer(mallory, { promptId: p.id, answer: 'no' });
    const unknown = await answer(mallory, { promptId: 'no-such-prompt', answer: 'no' });
    expect(foreign).toMatchObject({ status: 404, json: { code: 'not_found' } });
    // Another account's prompt and a made-up id get one and the same answer.
    expect({ ...foreign.json, requestId: null, instance: null }).toEqual({ ...unknown.json, requestId: null, instance: null });
    expect(await denials(userId)).toBe(0);
    expect((await prompts(owner))[0].readAt).toBeNull();
    expect((await answer(owner, { promptId: p.id, answer: 'no' })).status).toBe(204);
    expect(await denials(userId)).toBe(1);
  });
});
