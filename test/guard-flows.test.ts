/**
 * The guard end to end, through the HTTP API, the reset intake, the outbox and the courier (dev
 * mailbox channel), on every database: escalation and challenges, holds and their release,
 * secondary confirmation, breakers per type and cause, the blast radius, kill switches, incidents
 * and the audit trail.
 */
import { solveChallenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { afterEach, describe, expect, it } from 'vitest';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from './helpers/harness.js';
import { freshIp, from } from './helpers/recovery.js';

const PW = 'guard test passphrase 1';

async function sentTo(h: Harness, email: string, type?: string): Promise<number> {
  let q = h.s.storage.db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('recipient', '=', email).where('state', '=', 'sent');
  if (type) q = q.where('type', '=', type);
  return Number((await q.executeTakeFirst())?.n ?? 0);
}

async function states(h: Harness, type: string): Promise<Record<string, number>> {
  const rows = await h.s.storage.db.selectFrom('outbox').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).where('type', '=', type).groupBy('state').execute();
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

async function solved(challenge: any): Promise<string> {
  const solution = await solveChallenge({ challenge, deriveKey });
  return Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
}

describe.each(DIALECTS)('guard flows on %s', (dialect) => {
  let h: Harness;
  afterEach(async () => { await h?.close(); });

  it('challenges every reset request alike while escalated, and a solved challenge gets the mail', async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'solver@example.test', PW);
    await h.s.guard.override('reset', 'hold', 'test');
    const ip = freshIp();
    const known = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'solver@example.test' });
    const unknown = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'nobody@example.test' });
    expect([known.status, unknown.status]).toEqual([428, 428]);
    expect(known.json.code).toBe('challenge_required');
    expect(Object.keys(known.json).sort()).toEqual(Object.keys(unknown.json).sort());
    const altcha = await solved(known.json.challenge);
    const ok = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'solver@example.test', altcha });
    expect(ok.status).toBe(202);
    // The same solution twice is a replay.
    expect((await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'solver@example.test', altcha })).status).toBe(428);
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    expect(await sentTo(h, 'solver@example.test', 'password_reset')).toBe(1);
  });

  it('keeps unsolved requests for an operator in hold, lists them, and releases them once', async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'held@example.test', PW);
    // Admitted while normal, decided after the flow went to hold: kept, not mailed, not dropped.
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'held@example.test' })).status).toBe(202);
    await h.s.guard.override('reset', 'hold', 'test');
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    expect(await sentTo(h, 'held@example.test')).toBe(0);
    const b = await call(h.app, 'GET', '/api/v1/admin/breakers', undefined, admin);
    expect(b.json.breakers).toContainEqual(expect.objectContaining({ name: 'flow:reset', held: 1 }));
    const rel = await call(h.app, 'POST', '/api/v1/admin/breakers/flow:reset/release', { reason: 'checked: real user' }, admin);
    expect(rel.json).toEqual({ name: 'flow:reset', affected: 1 });
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    expect(await sentTo(h, 'held@example.test', 'password_reset')).toBe(1);
    const audit = await call(h.app, 'GET', '/api/v1/admin/audit', undefined, admin);
    expect(audit.json.entries.map((e: any) => [e.action, e.target, e.reason])).toContainEqual(['hold.release', 'flow:reset', 'checked: real user']);
  });

  it('asks a recently signed-in device "was it you?" instead of mailing, and acts on the answer', async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'prompted@example.test', PW);
    const token = await signIn(h, 'prompted@example.test', PW);
    await h.s.guard.override('reset', 'challenge', 'test');
    const c = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'prompted@example.test' });
    const altcha = await solved(c.json.challenge);
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'prompted@example.test', altcha })).status).toBe(202);
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    expect(await sentTo(h, 'prompted@example.test')).toBe(0);
    const inbox = await call(h.app, 'GET', '/api/v1/me/notifications', undefined, bearer(token));
    const prompt = inbox.json.notifications.find((n: any) => n.type === 'reset_prompt');
    expect(prompt.title).toMatch(/reset/i);
    expect((await call(h.app, 'POST', '/api/v1/me/reset-prompts/answer', { promptId: prompt.id, answer: 'yes' }, bearer(token))).status).toBe(204);
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    expect(await sentTo(h, 'prompted@example.test', 'password_reset')).toBe(1);
    // One answer per prompt; the next request's prompt takes a "no".
    expect((await call(h.app, 'POST', '/api/v1/me/reset-prompts/answer', { promptId: prompt.id, answer: 'no' }, bearer(token))).status).toBe(409);
    const c2 = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'prompted@example.test' });
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'prompted@example.test', altcha: await solved(c2.json.challenge) })).status).toBe(202);
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    const next = (await call(h.app, 'GET', '/api/v1/me/notifications', undefined, bearer(token))).json.notifications.find((n: any) => n.type === 'reset_prompt' && n.readAt === null);
    expect((await call(h.app, 'POST', '/api/v1/me/reset-prompts/answer', { promptId: next.id, answer: 'no' }, bearer(token))).status).toBe(204);
    const events = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(token));
    expect(events.json.events.map((e: any) => e.type)).toContain('password.reset_denied');
  });

  it('trips the password_reset breaker for anonymous causes, holds the rest, keeps protective notices flowing, and releases each once', async () => {
    h = await makeHarness(dialect);
    const emails = Array.from({ length: 40 }, (_, i) => `b${i}@example.test`);
    for (const e of emails) await createUser(h, e, PW);
    for (const [i, email] of emails.entries()) {
      await h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
        type: 'password_reset', channel: 'email', userId: null, recipient: email, cause: { kind: 'anonymous', requestId: `r${i}`, ip: '192.0.2.1' },
        data: { email, expiresInMinutes: 30 }, secret: { resetLink: `http://floodgate.test/reset?token=t${i}`, denyLink: `http://floodgate.test/reset/deny?token=d${i}` },
      }));
    }
    await h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
      type: 'password_changed', channel: 'email', userId: null, recipient: 'b0@example.test', cause: { kind: 'user', userId: 'u', requestId: 'rq', ip: null },
      data: { email: 'b0@example.test', at: new Date(h.clock.now()).toISOString() },
    }));
    await h.s.courier.drain();
    const st = await states(h, 'password_reset');
    expect(st.sent).toBe(30);
    expect(st.held).toBe(10);
    expect(await sentTo(h, 'b0@example.test', 'password_changed')).toBe(1);
    const br = await call(h.app, 'GET', '/api/v1/admin/breakers', undefined, admin);
    expect(br.json.breakers).toContainEqual(expect.objectContaining({ name: 'password_reset:anonymous', state: 'open', held: 10 }));
    const inc = await call(h.app, 'GET', '/api/v1/admin/incidents', undefined, admin);
    expect(inc.json.incidents[0]).toMatchObject({ kind: 'breaker', state: 'open' });
    expect(['external_flood', 'unclear']).toContain(inc.json.incidents[0].classification);
    const rel = await call(h.app, 'POST', '/api/v1/admin/breakers/password_reset:anonymous/release', { reason: 'verified with the on-call' }, admin);
    expect(rel.json.affected).toBe(10);
    await h.s.courier.drain();
    expect(await states(h, 'password_reset')).toEqual({ sent: 40 });
    for (const e of emails) expect(await sentTo(h, e, 'password_reset')).toBe(1);
    expect((await call(h.app, 'GET', '/api/v1/admin/incidents', undefined, admin)).json.incidents[0].state).toBe('closed');
  });

  it('holds a broadcast past the blast radius until approved, then mails every recipient exactly once', async () => {
    h = await makeHarness(dialect, { env: { FLOODGATE_BLAST_RADIUS: '3' } });
    const emails = Array.from({ length: 5 }, (_, i) => `bc${i}@example.test`);
    for (const e of emails) await createUser(h, e, PW);
    const b = await call(h.app, 'POST', '/api/v1/admin/broadcasts', { subject: 'You can ignore the reset emails', text: 'We sent reset emails by mistake.', audience: 'all', reason: 'incident 42' }, admin);
    expect(b.status).toBe(202);
    expect(b.json).toMatchObject({ recipients: 5, state: 'awaiting_approval' });
    await h.s.courier.drain();
    expect(await states(h, 'broadcast')).toEqual({ sent: 3, held: 2 });
    const inc = await call(h.app, 'GET', '/api/v1/admin/incidents', undefined, admin);
    expect(inc.json.incidents[0]).toMatchObject({ kind: 'blast', state: 'open' });
    const ap = await call(h.app, 'POST', `/api/v1/admin/broadcasts/${b.json.id}/approve`, { reason: 'reviewed text with legal' }, admin);
    expect(ap.status).toBe(200);
    await h.s.courier.drain();
    expect(await states(h, 'broadcast')).toEqual({ sent: 5 });
    for (const e of emails) expect(await sentTo(h, e, 'broadcast')).toBe(1);
    const list = await call(h.app, 'GET', '/api/v1/admin/broadcasts', undefined, admin);
    expect(list.json.broadcasts[0]).toMatchObject({ sent: 5, held: 0, approvedBy: expect.any(String) });
  });

  it('pauses and reroutes message types with kill switches, audited, and resumes what was paused', async () => {
    h = await makeHarness(dialect);
    const uid = await createUser(h, 'ks@example.test', PW);
    const put = (action: string | null) => call(h.app, 'PUT', '/api/v1/admin/kill-switches/type:password_changed', { action, reason: 'incident drill' }, admin);
    expect((await put('pause')).status).toBe(200);
    const enqueue = (n: string) => h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
      type: 'password_changed', channel: 'email', userId: uid, recipient: 'ks@example.test', cause: { kind: 'user', userId: uid, requestId: n, ip: null },
      data: { email: 'ks@example.test', at: new Date(h.clock.now()).toISOString() },
    }));
    await enqueue('a');
    await h.s.courier.drain();
    expect(await states(h, 'password_changed')).toEqual({ held: 1 });
    await put(null);
    await h.s.courier.drain();
    expect(await states(h, 'password_changed')).toEqual({ sent: 1 });
    await put('inbox_only');
    await enqueue('b');
    await h.s.courier.drain();
    const inbox = await h.s.storage.db.selectFrom('inbox').selectAll().where('user_id', '=', uid).execute();
    expect(inbox.map((r) => r.type)).toContain('password_changed');
    // Only the first notice went out as email; the second was rerouted to the in-app inbox.
    const mailed = await h.s.storage.db.selectFrom('dev_mailbox').select('id').where('recipient', '=', 'ks@example.test').execute();
    expect(mailed).toHaveLength(1);
    const audit = await call(h.app, 'GET', '/api/v1/admin/audit', undefined, admin);
    expect(audit.json.entries.map((e: any) => e.action)).toEqual(expect.arrayContaining(['kill_switch.pause', 'kill_switch.resume', 'kill_switch.inbox_only']));
  });

  it('drops reset requests while the reset flow is paused, and answers them like any other', async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'paused@example.test', PW);
    await call(h.app, 'PUT', '/api/v1/admin/kill-switches/flow:reset', { action: 'pause', reason: 'stop all reset mail' }, admin);
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'paused@example.test' });
    expect(r.status).toBe(202);
    await h.s.resetIntake.processOnce();
    await h.s.courier.drain();
    expect(await sentTo(h, 'paused@example.test')).toBe(0);
  });

  it('refuses the operator API without an operator token and validates its input', async () => {
    h = await makeHarness(dialect);
    expect((await call(h.app, 'GET', '/api/v1/admin/guard')).status).toBe(401);
    const g = await call(h.app, 'GET', '/api/v1/admin/guard', undefined, admin);
    expect(g.json.flows.map((f: any) => [f.flow, f.mode])).toEqual([['reset', 'normal'], ['signup', 'normal'], ['signin', 'normal'], ['verify_resend', 'normal']]);
    expect((await call(h.app, 'POST', '/api/v1/admin/breakers/x/release', { reason: '' }, admin)).status).toBe(400);
    expect((await call(h.app, 'PUT', '/api/v1/admin/kill-switches/bogus', { action: 'pause', reason: 'why not' }, admin)).status).toBe(400);
    const notice = await call(h.app, 'POST', '/api/v1/admin/status-notices', { title: 'Reset emails sent by mistake', body: 'You can ignore them.', severity: 'warning' }, admin);
    expect(notice.status).toBe(201);
    expect((await call(h.app, 'GET', '/api/v1/status')).json.notices[0]).toMatchObject({ title: 'Reset emails sent by mistake', resolvedAt: null });
  });
});
