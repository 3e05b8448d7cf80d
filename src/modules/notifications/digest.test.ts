/**
 * Priority lanes, past the cap: protective notices fold into the in-app inbox after a few emails
 * per account and day, and one digest lists them the next day. Through sign-in over HTTP, the
 * delivery gate (the outbound guard), the courier over real SMTP and the digest worker, on every
 * database, with the manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../kernel/clock.js';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from } from '../../../test/helpers/recovery.js';
import { startSmtpSink, type SmtpSink } from '../../../test/helpers/smtp.js';
import type { MessageType } from './model.js';
import { utcDay } from './digest.js';

const PW = 'digest test passphrase 5';
const firefox = (major: number) => `Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:${major}.0) Gecko/20100101 Firefox/${major}.0`;

describe.each(DIALECTS)('folded notices and the digest on %s', (dialect) => {
  let h: Harness;
  let sink: SmtpSink;
  const db = () => h.s.storage.db;

  beforeAll(async () => {
    sink = await startSmtpSink();
    h = await makeHarness(dialect, { env: { FLOODGATE_SMTP_URL: sink.url } });
  });
  afterAll(async () => {
    await h.close();
    await sink.close();
  });

  async function signInAs(email: string, ua: string): Promise<string> {
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/sessions', { email, password: PW }, { 'user-agent': ua });
    expect(r.status, r.text).toBe(201);
    return r.json.token;
  }
  let seq = 0;
  const notify = (userId: string, email: string, type: MessageType = 'password_changed') =>
    h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
      type, channel: 'email', userId, recipient: email, cause: { kind: 'user', userId, requestId: `rq-${++seq}`, ip: null },
      data: type === 'mfa_changed' ? { change: 'totp_enabled', at: new Date(h.clock.now()).toISOString() } : { email, at: new Date(h.clock.now()).toISOString() },
    }));
  const folds = (userId: string) => db().selectFrom('notice_folds').selectAll().where('user_id', '=', userId).orderBy('outbox_id').execute();

  it('10 new-device sign-ins in a day, under a flood of reset mail: 3 emails, 7 inbox items, then 1 digest', async () => {
    const email = 'busy@example.test';
    const userId = await createUser(h, email, PW);
    const token = await signInAs(email, firefox(100)); // the first sign-in: no notice
    // A flood of anonymous reset mail to others, queued first: its breaker trips, the notices pass.
    for (let i = 0; i < 60; i++) {
      await h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
        type: 'password_reset', channel: 'email', userId: null, recipient: `flood${i}@example.test`, cause: { kind: 'anonymous', requestId: `flood-${i}`, ip: '192.0.2.9' },
        data: { email: `flood${i}@example.test`, expiresInMinutes: 30 }, secret: { resetLink: `http://floodgate.test/reset?token=f${i}`, denyLink: `http://floodgate.test/reset/deny?token=g${i}` },
      }));
    }
    const day = utcDay(h.clock.now());
    for (let i = 1; i <= 10; i++) {
      await signInAs(email, firefox(100 + i));
      h.clock.advance(MINUTE);
    }
    await h.s.courier.drain();

    const notices = sink.to(email);
    expect(notices.map((m) => m.parsed.subject)).toEqual(Array(3).fill('New sign-in to your account'));
    const inbox = await call(h.app, 'GET', '/api/v1/me/notifications', undefined, bearer(token));
    const folded = inbox.json.notifications.filter((n: any) => n.type === 'new_signin');
    expect(folded).toHaveLength(7);
    // The inbox copy carries no secret link.
    expect(JSON.stringify(folded)).not.toContain('/signin/not-me');
    // Every sign-in reached the person exactly once: by email or in the inbox.
    const deviceOf = (text: string) => /Firefox (\d+) on Windows 10/.exec(text)![1];
    const seen = [...notices.map((m) => deviceOf(m.parsed.text ?? '')), ...folded.map((n: any) => deviceOf(n.body))].sort();
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => String(101 + i)).sort());
    const rows = await db().selectFrom('outbox').select(['id', 'state']).where('user_id', '=', userId).where('type', '=', 'new_signin').orderBy('id').execute();
    expect(rows.map((r) => r.state)).toEqual(Array(10).fill('sent'));
    expect((await folds(userId)).map((f) => [f.outbox_id, f.day, f.digest_id])).toEqual(folded.map((n: any) => [n.id, day, null]).sort());
    const flood = await db().selectFrom('outbox').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).where('type', '=', 'password_reset').where('cause_kind', '=', 'anonymous').groupBy('state').execute();
    expect(Object.fromEntries(flood.map((f) => [f.state, Number(f.n)]))).toEqual({ sent: 30, held: 30 });

    // The day is not over: no digest yet.
    expect(await h.s.digests.runOnce()).toMatchObject({ queued: 0 });
    h.clock.set(Date.parse(`${day}T00:00:00Z`) + DAY + 30 * MINUTE);
    expect(await h.s.digests.runOnce()).toMatchObject({ queued: 1 });
    expect(await h.s.digests.runOnce()).toMatchObject({ queued: 0 });
    const digest = await db().selectFrom('outbox').selectAll().where('type', '=', 'digest').where('user_id', '=', userId).execute();
    expect(digest).toHaveLength(1);
    expect(digest[0]).toMatchObject({ recipient: email, lane: 'bulk', cause_kind: 'job', cause_id: `digest:${day}`, idempotency_key: `digest:${userId}:${day}` });
    expect((await folds(userId)).every((f) => f.digest_id === digest[0]!.id)).toBe(true);
    await h.s.courier.drain();
    const mails = sink.to(email);
    expect(mails).toHaveLength(4);
    const d = mails[3]!;
    expect(d.parsed.subject).toBe('Your security notices (7)');
    expect((d.parsed.text ?? '').match(/^- .*New sign-in to your account$/gm)).toHaveLength(7);

    // A new day, a new allowance.
    await signInAs(email, firefox(120));
    await h.s.courier.drain();
    expect(sink.to(email)).toHaveLength(5);
  });

  it('counts per account and only protective email: others still get theirs, kill-switch reroutes are not digested', async () => {
    const a = await createUser(h, 'fold-a@example.test', PW);
    const b = await createUser(h, 'fold-b@example.test', PW);
    for (let i = 0; i < 3; i++) await notify(a, 'fold-a@example.test');
    await notify(b, 'fold-b@example.test');
    await h.s.courier.drain();
    expect(sink.to('fold-a@example.test')).toHaveLength(3);
    expect(sink.to('fold-b@example.test')).toHaveLength(1);
    const fourth = await notify(a, 'fold-a@example.test', 'mfa_changed');
    await h.s.courier.drain();
    expect(sink.to('fold-a@example.test')).toHaveLength(3);
    expect((await folds(a)).map((f) => [f.outbox_id, f.type])).toEqual([[fourth.id, 'mfa_changed']]);
    expect(await db().selectFrom('inbox').select('type').where('id', '=', fourth.id).executeTakeFirst()).toEqual({ type: 'mfa_changed' });
    // A retry of a folded row is folded again, and not counted twice.
    const row = await db().selectFrom('outbox').selectAll().where('id', '=', fourth.id).executeTakeFirstOrThrow();
    const { sealed: _s, ...view } = row;
    // The delivered row records the channel it went through (inbox); its retry was still an email.
    expect(view.channel).toBe('inbox');
    expect(await h.s.outbound.decide({ ...view, channel: 'email', attempts: 1 })).toEqual({ action: 'reroute', channel: 'inbox', reason: 'folded' });
    expect(await h.s.guardStore.counter(`fold:${a}:${utcDay(h.clock.now())}`)).toBe(4);
    // Other types are not protective: never folded.
    for (let i = 0; i < 4; i++) {
      await h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, { type: 'signup_existing', channel: 'email', userId: a, recipient: 'fold-a@example.test', cause: { kind: 'anonymous', requestId: `su-${i}`, ip: null }, data: { email: 'fold-a@example.test' } }));
    }
    await h.s.courier.drain();
    expect(sink.to('fold-a@example.test')).toHaveLength(7);

    // An operator's inbox-only kill switch reroutes, but that is not a fold: no digest of it.
    expect((await call(h.app, 'PUT', '/api/v1/admin/kill-switches/type:email_changed', { action: 'inbox_only', reason: 'drill' }, admin)).status).toBe(200);
    const ks = await h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
      type: 'email_changed', channel: 'email', userId: b, recipient: 'fold-b@example.test', cause: { kind: 'user', userId: b, requestId: 'ks-1', ip: null },
      data: { oldEmail: 'fold-b@example.test', newEmail: 'new-b@example.test', at: new Date(h.clock.now()).toISOString() },
    }));
    await h.s.courier.drain();
    await call(h.app, 'PUT', '/api/v1/admin/kill-switches/type:email_changed', { action: null, reason: 'drill over' }, admin);
    expect(await db().selectFrom('inbox').select('id').where('id', '=', ks.id).executeTakeFirst()).toBeDefined();
    expect(await folds(b)).toEqual([]);

    h.clock.advance(DAY);
    await h.s.digests.runOnce();
    const digests = await db().selectFrom('outbox').select(['user_id', 'payload']).where('type', '=', 'digest').where('user_id', 'in', [a, b]).execute();
    expect(digests).toHaveLength(1);
    expect(digests[0]!.user_id).toBe(a);
    expect(JSON.parse(digests[0]!.payload).items).toEqual([{ subject: 'Your two-step sign-in settings changed', at: new Date(row.created_at).toISOString() }]);
  });
});

describe.each(DIALECTS)('digests past the blast radius on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect, { env: { FLOODGATE_BLAST_RADIUS: '1' } }); });
  afterAll(async () => { await h.close(); });

  it('holds a day\'s digests beyond the blast radius for an operator: a bug that folds for everyone cannot mail everyone', async () => {
    const users: [string, string][] = [];
    for (const e of ['br1@example.test', 'br2@example.test']) users.push([await createUser(h, e, PW), e]);
    for (const [id, email] of users) {
      for (let i = 0; i < 4; i++) {
        await h.s.storage.db.transaction().execute((trx) => h.s.outbox.enqueue(trx, {
          type: 'password_changed', channel: 'email', userId: id, recipient: email, cause: { kind: 'user', userId: id, requestId: `${email}-${i}`, ip: null },
          data: { email, at: new Date(h.clock.now()).toISOString() },
        }));
      }
    }
    await h.s.courier.drain();
    h.clock.advance(DAY + HOUR);
    expect(await h.s.digests.runOnce()).toMatchObject({ queued: 2 });
    await h.s.courier.drain();
    const st = await h.s.storage.db.selectFrom('outbox').select(['state', 'held_reason']).where('type', '=', 'digest').orderBy('id').execute();
    expect(st.map((r) => r.state).sort()).toEqual(['held', 'sent']);
    const reason = st.find((r) => r.state === 'held')!.held_reason!;
    expect(reason).toMatch(/^blast_radius:digest:\d{4}-\d{2}-\d{2}$/);
    const rel = await call(h.app, 'POST', `/api/v1/admin/breakers/${reason.replace('blast_radius:', 'blast:')}/release`, { reason: 'checked: one day of real folds' }, admin);
    expect(rel.json).toMatchObject({ affected: 1 });
    await h.s.courier.drain();
    expect((await h.s.storage.db.selectFrom('outbox').select('state').where('type', '=', 'digest').execute()).map((r) => r.state)).toEqual(['sent', 'sent']);
  });
});
