import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import pino from 'pino';
import { HOUR, SECOND } from '../../kernel/clock.js';
import { DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { linksOf, startSmtpSink, type SmtpSink } from '../../../test/helpers/smtp.js';
import { AT, dkimFixture, enqueueMail, jobCause, type DkimFixture } from '../../../test/helpers/courier.js';
import { SmtpChannel } from './channels/smtp.js';
import { Courier } from './courier.js';
import { createCourier } from './factory.js';
import type { DeliveryGate, DeliveryRow, GateDecision } from './ports.js';

const PUBLIC = 'http://floodgate.test';
const FROM = 'Floodgate <security@example.test>';

describe.each(DIALECTS)('courier over SMTP on %s', (dialect) => {
  let h: Harness;
  let sink: SmtpSink;
  let dkim: DkimFixture;
  const db = () => h.s.storage.db;
  const row = (id: string) => db().selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const mailTo = (addr: string) => sink.to(addr);

  beforeAll(async () => {
    sink = await startSmtpSink();
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    dkim = dkimFixture(mkdtempSync(join(tmpdir(), 'dkim-')));
    h = await makeHarness(dialect, {
      env: { FLOODGATE_SMTP_URL: sink.url, FLOODGATE_MAIL_FROM: FROM, FLOODGATE_DKIM_DOMAIN: 'example.test', FLOODGATE_DKIM_SELECTOR: 'test', FLOODGATE_DKIM_KEY_FILE: dkim.keyFile },
    });
  });
  afterAll(async () => {
    await h.close();
    await sink.close();
  });
  afterEach(() => sink.failNext(0));

  it('delivers a reset mail through real SMTP: plain-text part, links only to publicUrl, secret wiped', async () => {
    const token = `${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    const { id } = await enqueueMail(h.s.outbox, db(), 'password_reset', 'reset@example.test', { email: 'reset@example.test', expiresInMinutes: 30 }, {
      secret: { resetLink: `${PUBLIC}/reset?token=${token}`, denyLink: `${PUBLIC}/reset/deny?token=${token}x` },
    });
    expect((await row(id)).sealed).not.toBeNull();
    expect(await h.s.courier.drain()).toBe(1);

    const [m] = mailTo('reset@example.test');
    expect(m).toBeDefined();
    const raw = m!.raw.toString('latin1');
    expect(raw).toMatch(/^content-type:[ \t]*text\/plain/im);
    expect(raw).toMatch(/^content-type:[ \t]*text\/html/im);
    expect((m!.parsed.text ?? '').length).toBeGreaterThan(100);
    const links = linksOf(m!);
    expect(links.length).toBeGreaterThan(0);
    expect(links.every((u) => u.startsWith(PUBLIC + '/'))).toBe(true);
    expect(links.filter((u) => u.startsWith(`${PUBLIC}/reset?token=`))).toEqual([`${PUBLIC}/reset?token=${token}`]);
    expect(links.filter((u) => u.startsWith(`${PUBLIC}/reset/deny?token=`))).toHaveLength(1);
    expect(m!.parsed.messageId).toBe(`<${id}@example.test>`);
    expect(m!.parsed.from?.text).toContain('security@example.test');
    expect(m!.parsed.date?.getTime()).toBe(Math.floor(h.clock.now() / 1000) * 1000);
    expect(raw).not.toMatch(/<img|List-Unsubscribe|utm_/i);

    const r = await row(id);
    expect(r).toMatchObject({ state: 'sent', sealed: null, attempts: 1, claimed_by: null, last_error: null });
    expect(r.sent_at).toBe(h.clock.now());
    const attempts = await db().selectFrom('outbox_attempts').selectAll().where('message_id', '=', id).execute();
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ ok: 1, error: null });
  });

  it('signs with DKIM, and the signature verifies with mailauth', async () => {
    await enqueueMail(h.s.outbox, db(), 'signup_existing', 'dkim@example.test', { email: 'dkim@example.test' });
    await h.s.courier.drain();
    const [m] = mailTo('dkim@example.test');
    expect(m!.raw.toString('latin1')).toMatch(/^DKIM-Signature:/m);
    const res = await dkimVerify(m!.raw, { resolver: dkim.resolver as any });
    expect(res.results.map((r: any) => [r.status?.result, r.signingDomain])).toEqual([['pass', 'example.test']]);
    // A tampered body no longer verifies: the check above is not vacuous.
    const tampered = Buffer.from(m!.raw.toString('latin1').replace('Subject: Someone tried', 'Subject: Someone TRIED'), 'latin1');
    expect(tampered.equals(m!.raw)).toBe(false);
    const bad = await dkimVerify(tampered, { resolver: dkim.resolver as any });
    expect(bad.results[0]?.status?.result).not.toBe('pass');
  });

  it('holds the row (never sends unsigned) when DKIM signing fails', async () => {
    // An Ed25519 key: nodemailer's signer cannot use it and would silently send the mail unsigned.
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const channel = new SmtpChannel({ url: sink.url, from: FROM, clock: h.clock, dkim: { domainName: 'example.test', keySelector: 'test', privateKey: ed } });
    const courier = new Courier({ db: db(), dialect: h.dialect, clock: h.clock, logger: pino({ level: 'silent' }), metrics: h.s.metrics, outbox: h.s.outbox, publicUrl: PUBLIC, channels: { email: channel } });
    const { id } = await enqueueMail(h.s.outbox, db(), 'verify_email', 'unsigned@example.test', { email: 'unsigned@example.test', expiresInMinutes: 30 }, { secret: { link: `${PUBLIC}/verify?token=abc` } });
    await courier.drain();
    await courier.stop();
    const r = await row(id);
    expect(r).toMatchObject({ state: 'held', held_reason: 'dkim signing failed' });
    expect(r.sealed).not.toBeNull(); // kept, so a release after the key is fixed can still deliver it
    expect(mailTo('unsigned@example.test')).toHaveLength(0);
  });

  it('refuses to boot with a missing or unusable DKIM key', () => {
    const deps = { storage: h.s.storage, clock: h.clock, logger: pino({ level: 'silent' }), metrics: h.s.metrics, outbox: h.s.outbox, box: h.s.box };
    const dkimCfg = (keyFile: string) => ({ ...h.config, dkim: { domain: 'example.test', selector: 'test', keyFile } });
    expect(() => createCourier({ ...deps, config: dkimCfg(join(h.dir, 'missing.pem')) })).toThrow(/FLOODGATE_DKIM_KEY_FILE: cannot read .*missing\.pem \(ENOENT\)/);
    const junk = join(h.dir, 'junk.pem');
    writeFileSync(junk, 'not a key');
    expect(() => createCourier({ ...deps, config: dkimCfg(junk) })).toThrow(/does not hold a PEM private key/);
    const ec = join(h.dir, 'ec.pem');
    writeFileSync(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => createCourier({ ...deps, config: dkimCfg(ec) })).toThrow(/needs an RSA key/);
  });

  it('retries with exponential backoff and full jitter, then dead-letters after 8 attempts', async () => {
    sink.failNext(1000);
    const { id } = await enqueueMail(h.s.outbox, db(), 'signup_existing', 'flaky@example.test', { email: 'flaky@example.test' });
    for (let attempt = 1; attempt <= 8; attempt++) {
      expect(await h.s.courier.pollOnce()).toBe(1);
      const r = await row(id);
      expect(r.attempts).toBe(attempt);
      expect(r.last_error).toMatch(/451/);
      if (attempt < 8) {
        expect(r.state).toBe('queued');
        const delay = r.next_attempt_at - h.clock.now();
        expect(delay).toBeGreaterThanOrEqual(SECOND);
        expect(delay).toBeLessThanOrEqual(Math.min(HOUR, 30 * SECOND * 2 ** (attempt - 1)));
        // Not due before its time.
        expect(await h.s.courier.pollOnce()).toBe(0);
        h.clock.advance(delay);
      } else {
        expect(r.state).toBe('failed');
        expect(r.last_error).toMatch(/gave up after 8 attempts/);
        expect(r.sealed).toBeNull();
      }
    }
    h.clock.advance(2 * HOUR);
    expect(await h.s.courier.pollOnce()).toBe(0); // a dead letter stays put
    const attempts = await db().selectFrom('outbox_attempts').select(['ok']).where('message_id', '=', id).execute();
    expect(attempts.map((a) => a.ok)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const metrics = await h.s.metrics.registry.getSingleMetricAsString('floodgate_messages_total');
    expect(metrics).toMatch(/floodgate_messages_total\{type="signup_existing",channel="email",event="retried"\} 7/);
    expect(metrics).toMatch(/floodgate_messages_total\{type="signup_existing",channel="email",event="failed"\} 1/);
    expect(await h.s.metrics.registry.getSingleMetricAsString('floodgate_outbox_depth')).toMatch(/state="failed"\} [1-9]/);
  });

  it('recovers after transient failures', async () => {
    sink.failNext(2);
    const { id } = await enqueueMail(h.s.outbox, db(), 'signup_existing', 'recovers@example.test', { email: 'recovers@example.test' });
    for (let i = 0; i < 3; i++) {
      await h.s.courier.pollOnce();
      h.clock.advance(HOUR);
    }
    expect(await row(id)).toMatchObject({ state: 'sent', attempts: 3 });
    expect(mailTo('recovers@example.test')).toHaveLength(1);
  });

  it('keeps the raw secret out of the database file', async () => {
    if (!h.dbFile) return expect(dialect).toBe('postgres'); // PostgreSQL: the sealed column is checked in the first test
    const token = `${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    const { id } = await enqueueMail(h.s.outbox, db(), 'password_reset', 'bytes@example.test', { email: 'bytes@example.test', expiresInMinutes: 30 }, {
      secret: { resetLink: `${PUBLIC}/reset?token=${token}`, denyLink: `${PUBLIC}/reset/deny?token=${token}` },
    });
    await h.s.courier.drain();
    expect(await row(id)).toMatchObject({ state: 'sent', sealed: null });
    expect(linksOf(mailTo('bytes@example.test')[0]!)).toContain(`${PUBLIC}/reset?token=${token}`);
    let bytes = Buffer.alloc(0);
    for (const f of [h.dbFile, `${h.dbFile}-wal`]) if (existsSync(f)) bytes = Buffer.concat([bytes, readFileSync(f)]);
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes(Buffer.from(token.split('.')[1]!))).toBe(false);
  });

  it('delivers a duplicate enqueue once', async () => {
    const cause = jobCause('dup');
    const msg = { type: 'signup_existing' as const, channel: 'email' as const, userId: null, recipient: 'dup@example.test', cause, data: { email: 'dup@example.test' } };
    const a = await h.s.outbox.enqueue(db(), msg);
    const b = await h.s.outbox.enqueue(db(), msg);
    expect(b).toEqual({ id: a.id, duplicate: true });
    await h.s.courier.drain();
    expect(mailTo('dup@example.test')).toHaveLength(1);
  });

  it('delivers a priority notice before a backlog of 500 normal messages', async () => {
    for (let i = 0; i < 500; i++) await enqueueMail(h.s.outbox, db(), 'signup_existing', `backlog${i}@example.test`, { email: `backlog${i}@example.test` });
    const { id } = await enqueueMail(h.s.outbox, db(), 'password_changed', 'alert@example.test', { email: 'alert@example.test', at: AT });
    const before = sink.messages.length;
    await h.s.courier.pollOnce();
    expect(await row(id)).toMatchObject({ state: 'sent' });
    expect(sink.messages[before]!.to).toEqual(['alert@example.test']);
    expect(sink.messages.length - before).toBeLessThanOrEqual(51); // one batch, not the backlog
    await h.s.courier.drain();
    expect(sink.messages.length - before).toBe(501);
  }, 120_000);

  it('refuses a row without a cause, and fails unknown types and missing fields clearly', async () => {
    const now = h.clock.now();
    const base = { channel: 'email', lane: 'normal', user_id: null, cause_ip: null, sealed: null, state: 'queued', attempts: 0, next_attempt_at: now, last_error: null, held_reason: null, claimed_by: null, claimed_until: null, created_at: now, updated_at: now, sent_at: null };
    await db().insertInto('outbox').values([
      { ...base, id: 'NOCAUSE0000000000000000001', type: 'signup_existing', recipient: 'nocause@example.test', idempotency_key: 'nocause', cause_kind: 'job', cause_id: '', payload: JSON.stringify({ email: 'nocause@example.test' }) },
      { ...base, id: 'NOCAUSE0000000000000000002', type: 'pizza_party', recipient: 'pizza@example.test', idempotency_key: 'pizza', cause_kind: 'job', cause_id: 'j1', payload: '{}' },
      { ...base, id: 'NOCAUSE0000000000000000003', type: 'verify_email', recipient: 'nofield@example.test', idempotency_key: 'nofield', cause_kind: 'job', cause_id: 'j2', payload: JSON.stringify({ email: 'nofield@example.test' }) },
    ]).execute();
    await h.s.courier.drain();
    expect(await row('NOCAUSE0000000000000000001')).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/records no cause/) });
    expect(await row('NOCAUSE0000000000000000002')).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/unknown message type "pizza_party"/) });
    expect(await row('NOCAUSE0000000000000000003')).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/verify_email: data\.expiresInMinutes/) });
    for (const a of ['nocause', 'pizza', 'nofield']) expect(mailTo(`${a}@example.test`)).toHaveLength(0);
  });

  it('asks the gate before sending: held rows wait, never dropped; released rows go out; reroutes reach the inbox', async () => {
    const seen: DeliveryRow[] = [];
    let decide: (r: DeliveryRow) => GateDecision = () => ({ action: 'hold', reason: 'breaker:broadcast:operator' });
    const gate: DeliveryGate = { decide: (r) => { seen.push(r); return decide(r); } };
    const courier = createCourier({ config: h.config, storage: h.s.storage, clock: h.clock, logger: pino({ level: 'silent' }), metrics: h.s.metrics, outbox: h.s.outbox, box: h.s.box, gate });
    const { id } = await enqueueMail(h.s.outbox, db(), 'broadcast', 'gated@example.test', { subject: 'Hello', text: 'All is well.' });
    await courier.drain();
    expect(seen.at(-1)).toMatchObject({ id, attempts: 0 });
    expect('sealed' in seen.at(-1)!).toBe(false);
    expect(await row(id)).toMatchObject({ state: 'held', held_reason: 'breaker:broadcast:operator', attempts: 0 });
    h.clock.advance(HOUR);
    expect(await courier.pollOnce()).toBe(0);
    expect(mailTo('gated@example.test')).toHaveLength(0);

    decide = () => ({ action: 'send' });
    expect(await courier.release({ type: 'broadcast' })).toBeGreaterThanOrEqual(1);
    expect(await row(id)).toMatchObject({ state: 'queued', held_reason: 'released:breaker:broadcast:operator' });
    await courier.drain();
    expect(seen.at(-1)).toMatchObject({ id, held_reason: 'released:breaker:broadcast:operator' });
    expect(await row(id)).toMatchObject({ state: 'sent', attempts: 1, held_reason: null });
    expect(mailTo('gated@example.test')).toHaveLength(1);

    decide = () => ({ action: 'hold', reason: 'kill_switch' });
    const d = await enqueueMail(h.s.outbox, db(), 'broadcast', 'discard@example.test', { subject: 'Oops', text: 'Not for you.' });
    await courier.drain();
    expect(await courier.discard({ ids: [d.id] })).toBe(1);
    expect(await row(d.id)).toMatchObject({ state: 'discarded', sealed: null });

    decide = () => ({ action: 'reroute', channel: 'inbox', reason: 'kill_switch:inbox_only' });
    const userId = 'USER0000000000000000000001';
    const n = await enqueueMail(h.s.outbox, db(), 'new_signin', 'rerouted@example.test', { device: 'Firefox on Linux', at: AT }, { userId, secret: { revokeLink: `${PUBLIC}/sessions/revoke?token=secret-token` } });
    const r = await enqueueMail(h.s.outbox, db(), 'password_reset', 'rerouted@example.test', { email: 'rerouted@example.test', expiresInMinutes: 30 }, { userId, secret: { resetLink: `${PUBLIC}/reset?token=t`, denyLink: `${PUBLIC}/reset/deny?token=t` } });
    await courier.drain();
    await courier.stop();
    expect(await row(n.id)).toMatchObject({ state: 'sent' });
    const entry = await db().selectFrom('inbox').selectAll().where('id', '=', n.id).executeTakeFirstOrThrow();
    expect(entry.user_id).toBe(userId);
    expect(entry.body).not.toContain('secret-token'); // the inbox never gets secret links
    expect(await row(r.id)).toMatchObject({ state: 'held', held_reason: expect.stringMatching(/cannot be rerouted to inbox/) });
    expect(mailTo('rerouted@example.test')).toHaveLength(0);
  });

  it('reports outbox depth and the age of the oldest queued row', async () => {
    await enqueueMail(h.s.outbox, db(), 'signup_existing', 'depth@example.test', { email: 'depth@example.test' });
    h.clock.advance(90 * SECOND);
    sink.failNext(1);
    await h.s.courier.pollOnce(); // gauges are read before the batch is delivered
    expect(await h.s.metrics.registry.getSingleMetricAsString('floodgate_outbox_depth')).toMatch(/state="sending"\} 1/);
    expect(await h.s.metrics.registry.getSingleMetricAsString('floodgate_outbox_oldest_age_seconds')).toMatch(/ 0$/m);
    await h.s.courier.pollOnce();
    const age = await h.s.metrics.registry.getSingleMetricAsString('floodgate_outbox_oldest_age_seconds');
    expect(Number(age.trim().split(/\s+/).at(-1))).toBe(90);
    h.clock.advance(HOUR);
    await h.s.courier.drain();
    expect(await h.s.metrics.registry.getSingleMetricAsString('floodgate_messages_total')).toMatch(/type="signup_existing",channel="email",event="queued"\} [1-9]/);
  });
});
