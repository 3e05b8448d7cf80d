import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../kernel/clock.js';
import { call, createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from, lastResetMail, requestReset, resetMails, resetRows, stableHeaders } from '../../../test/helpers/recovery.js';
import { ResetIntakeWorker } from './intake.js';
import { RecoveryService } from './service.js';

const PW = 'recovery test passphrase 1';

describe.each(DIALECTS)('password reset requests on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const intakeCount = async () => Number((await h.s.storage.db.selectFrom('reset_intake').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const events = (userId: string, type: string) => h.s.storage.db.selectFrom('security_events').selectAll().where('user_id', '=', userId).where('type', '=', type).orderBy('id').execute();
  const metric = async (decision: string) => {
    const m = await h.s.metrics.resetRequests.get();
    return m.values.find((v) => v.labels.decision === decision)?.value ?? 0;
  };

  it('answers known and unknown emails byte for byte alike, and only the known one gets mail', async () => {
    await createUser(h, 'known@example.test', PW);
    const ip = freshIp();
    const known = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'known@example.test' });
    const unknown = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'unknown@example.test' });
    expect(known.status).toBe(202);
    expect(known.text).toBe('{"status":"accepted"}');
    expect(unknown.text).toBe(known.text);
    expect(stableHeaders(unknown.headers)).toEqual(stableHeaders(known.headers));
    // Nothing is decided on the request path: both are written down alike, and nothing is queued yet.
    expect(await intakeCount()).toBe(2);
    expect(await resetRows(h, 'known@example.test')).toHaveLength(0);

    const before = { unknown: await metric('unknown'), sent: await metric('sent') };
    const report = await h.s.resetIntake.processOnce();
    expect(report).toMatchObject({ claimed: 2, decisions: { sent: 1, unknown: 1 } });
    expect(await intakeCount()).toBe(0);
    expect(await metric('unknown')).toBe(before.unknown + 1);
    expect(await metric('sent')).toBe(before.sent + 1);
    const all = await h.s.storage.db.selectFrom('outbox').selectAll().execute();
    expect(all.filter((r) => r.recipient.includes('unknown'))).toEqual([]);
    const [row] = await resetRows(h, 'known@example.test');
    expect(row).toMatchObject({ channel: 'email', cause_kind: 'anonymous', cause_id: known.headers['x-request-id'], cause_ip: ip });
    expect(JSON.parse(row!.payload)).toEqual({ email: 'known@example.test', expiresInMinutes: 30 });
  });

  it('puts a token of at least 128 bits in the mail and stores only its hash', async () => {
    const userId = await createUser(h, 'hash@example.test', PW);
    await requestReset(h, 'hash@example.test');
    const mail = await lastResetMail(h, 'hash@example.test');
    expect(mail.resetLink).toMatch(/^http:\/\/floodgate\.test\/reset\?token=[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(mail.denyLink).toMatch(/^http:\/\/floodgate\.test\/reset\/deny\?token=[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    const secret = mail.token.split('.')[1]!;
    expect(Buffer.from(secret, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    expect(mail.denyToken).not.toBe(mail.token);
    const [flow] = await h.s.storage.db.selectFrom('recovery_flows').selectAll().where('user_id', '=', userId).execute();
    expect(flow!.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(flow!.token_hash).not.toContain(secret);
    const stored = JSON.stringify(await h.s.storage.db.selectFrom('recovery_flows').selectAll().execute()) + JSON.stringify(await h.s.storage.db.selectFrom('outbox').selectAll().execute());
    for (const t of [mail.token, secret, mail.denyToken, mail.denyToken.split('.')[1]!]) expect(stored).not.toContain(t);
    if (h.dbFile) {
      const bytes = Buffer.concat([h.dbFile, `${h.dbFile}-wal`].map((f) => { try { return readFileSync(f); } catch { return Buffer.alloc(0); } }));
      expect(bytes.length).toBeGreaterThan(0);
      for (const t of [mail.token, secret, mail.denyToken.split('.')[1]!]) expect(bytes.includes(Buffer.from(t))).toBe(false);
      // The scan is not vacuous: the hash of the secret is there.
      expect(bytes.includes(Buffer.from(flow!.token_hash))).toBe(true);
    }
  });

  it('reuses a live token instead of mailing again, then mails with growing gaps up to a daily cap', async () => {
    const userId = await createUser(h, 'gaps@example.test', PW);
    const mails = () => resetRows(h, 'gaps@example.test');
    await requestReset(h, 'gaps@example.test');
    expect(await mails()).toHaveLength(1);
    // While the first link is live and within the gap: no new token, no new mail.
    h.clock.advance(MINUTE);
    const reused = await requestReset(h, 'gaps@example.test');
    expect(reused.status).toBe(202);
    expect(await mails()).toHaveLength(1);
    // After 2 minutes: a second mail, with a new token that supersedes the first.
    h.clock.advance(MINUTE + 1);
    await requestReset(h, 'gaps@example.test');
    expect(await mails()).toHaveLength(2);
    // The third needs 10 minutes after the second.
    h.clock.advance(9 * MINUTE);
    await requestReset(h, 'gaps@example.test');
    expect(await mails()).toHaveLength(2);
    h.clock.advance(MINUTE + 1);
    await requestReset(h, 'gaps@example.test');
    expect(await mails()).toHaveLength(3);
    // Daily cap (3): nothing more for 24 hours, however long one waits between requests.
    for (const wait of [HOUR, 2 * HOUR, 6 * HOUR]) {
      h.clock.advance(wait);
      expect((await requestReset(h, 'gaps@example.test')).status).toBe(202);
    }
    expect(await mails()).toHaveLength(3);
    const decisions = (await events(userId, 'password.reset_requested')).map((e) => JSON.parse(e.data).decision);
    expect(decisions).toEqual(['sent', 'reused', 'sent', 'reused', 'sent', 'suppressed', 'suppressed', 'suppressed']);
    expect(JSON.parse((await events(userId, 'password.reset_requested')).at(-1)!.data).reason).toBe('daily_cap');
    // The window slides: a day after the first mail, one more is allowed.
    h.clock.advance(DAY - (9 * HOUR + 2 * MINUTE) + MINUTE);
    await requestReset(h, 'gaps@example.test');
    expect(await mails()).toHaveLength(4);
  });

  it('supersedes the older token when a newer one is issued', async () => {
    await createUser(h, 'newer@example.test', PW);
    await requestReset(h, 'newer@example.test');
    h.clock.advance(3 * MINUTE);
    await requestReset(h, 'newer@example.test');
    const [first, second] = await resetMails(h, 'newer@example.test');
    const states = await h.s.storage.db.selectFrom('recovery_flows').select(['state', 'end_reason']).innerJoin('users', 'users.id', 'recovery_flows.user_id').where('users.email_normalized', '=', 'newer@example.test').orderBy('issued_at').execute();
    expect(states).toEqual([{ state: 'superseded', end_reason: 'newer_token' }, { state: 'issued', end_reason: null }]);
    const old = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets/confirm', { token: first!.token, password: 'a new passphrase 2' });
    expect(old).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    const ok = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets/confirm', { token: second!.token, password: 'a new passphrase 2' });
    expect(ok.status).toBe(204);
  });

  it('throttles per source with the same 429 for known and unknown emails, and never per account', async () => {
    await createUser(h, 'limited@example.test', PW);
    const ip = freshIp();
    // The guard's per-source limit: 10 a minute (src/modules/guard/guard.ts SOURCE_LIMITS).
    for (let i = 0; i < 10; i++) {
      const r = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: i % 2 ? 'limited@example.test' : `nobody${i}@example.test` });
      expect(r.status).toBe(202);
    }
    const known = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'limited@example.test' });
    const unknown = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'nobody-else@example.test' });
    expect(known.status).toBe(429);
    expect(known.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(known.headers['retry-after'])).toBeGreaterThan(0);
    expect(known.headers['content-type']).toMatch(/application\/problem\+json/);
    // Refused attempts count too (the guard limits attempts), so each one pushes Retry-After a
    // little later, whatever the email: only the order of the requests moves it.
    const noRetry = (hd: typeof known.headers) => ({ ...stableHeaders(hd), 'retry-after': null });
    expect(noRetry(unknown.headers)).toEqual(noRetry(known.headers));
    expect(Number(unknown.headers['retry-after'])).toBeGreaterThanOrEqual(Number(known.headers['retry-after']));
    const knownAgain = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'limited@example.test' });
    expect(Number(knownAgain.headers['retry-after'])).toBeGreaterThanOrEqual(Number(unknown.headers['retry-after']));
    expect({ ...unknown.json, requestId: null }).toEqual({ ...known.json, requestId: null });
    expect(known.json.code).toBe('rate_limited');
    // Another source asking for the same account is not throttled: the limit is the source's.
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'limited@example.test' })).status).toBe(202);
    // An IPv6 client is one source per /64.
    const v6 = (n: number) => `2001:db8:aa:bb::${n.toString(16)}`;
    for (let i = 0; i < 10; i++) expect((await from(h.app, v6(i + 1), 'POST', '/api/v1/password-resets', { email: `v6-${i}@example.test` })).status).toBe(202);
    expect((await from(h.app, v6(999), 'POST', '/api/v1/password-resets', { email: 'v6@example.test' })).status).toBe(429);
    // Once it stops, the source may ask again when Retry-After said.
    h.clock.advance(Number(knownAgain.headers['retry-after']) * 1000);
    expect((await from(h.app, ip, 'POST', '/api/v1/password-resets', { email: 'limited@example.test' })).status).toBe(202);
    await h.s.resetIntake.processOnce();
  });

  it('never puts the Host or X-Forwarded-Host of a request into a link', async () => {
    const proxied = await makeHarness(dialect, { env: { FLOODGATE_TRUST_PROXY: 'loopback' } });
    try {
      for (const hh of [h, proxied]) {
        await createUser(hh, 'host@example.test', PW);
        const r = await from(hh.app, '127.0.0.1', 'POST', '/api/v1/password-resets', { email: 'host@example.test' }, {
          host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-for': freshIp(), forwarded: 'host=evil.example;proto=https',
        });
        expect(r.status).toBe(202);
        await hh.s.resetIntake.processOnce();
        const mail = await lastResetMail(hh, 'host@example.test');
        for (const link of [mail.resetLink, mail.denyLink]) {
          expect(link.startsWith('http://floodgate.test/')).toBe(true);
          expect(link).not.toContain('evil');
        }
      }
    } finally {
      await proxied.close();
    }
  });

  it('refuses an implausible address with a 400 that says so, for any address alike', async () => {
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'not an email' });
    expect(r).toMatchObject({ status: 400, json: { code: 'invalid_request', errors: [{ field: 'email' }] } });
    const extra = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'a@example.test', admin: true });
    expect(extra).toMatchObject({ status: 400, json: { code: 'invalid_request' } });
    expect(await intakeCount()).toBe(0);
  });

  it('refuses a cross-site browser post and accepts one from its own origin', async () => {
    const cross = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'x@example.test' }, { origin: 'https://evil.example' });
    expect(cross).toMatchObject({ status: 403, json: { code: 'csrf_failed' } });
    const site = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'x@example.test' }, { 'sec-fetch-site': 'cross-site' });
    expect(site.status).toBe(403);
    const same = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'x@example.test' }, { origin: 'http://floodgate.test', 'sec-fetch-site': 'same-origin' });
    expect(same.status).toBe(202);
    await h.s.resetIntake.processOnce();
  });

  it('lets two workers share the intake without deciding a row twice', async () => {
    await createUser(h, 'race@example.test', PW);
    const other = new ResetIntakeWorker({ db: h.s.storage.db, dialect: h.s.storage.dialect, clock: h.clock, logger: h.s.logger, metrics: h.s.metrics, recovery: h.s.recovery });
    for (let i = 0; i < 6; i++) await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'race@example.test' });
    for (let i = 0; i < 6; i++) await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: `race-nobody${i}@example.test` });
    const [a, b] = await Promise.all([h.s.resetIntake.processOnce(), other.processOnce()]);
    expect(a.claimed + b.claimed).toBe(12);
    const decided = [a, b].flatMap((r) => Object.entries(r.decisions)).reduce((n, [, v]) => n + (v ?? 0), 0);
    expect(decided).toBe(12);
    expect(await intakeCount()).toBe(0);
    // Six requests for one account, decided concurrently: one mail.
    expect(await resetRows(h, 'race@example.test')).toHaveLength(1);
    const live = await h.s.storage.db.selectFrom('recovery_flows').innerJoin('users', 'users.id', 'recovery_flows.user_id').where('users.email_normalized', '=', 'race@example.test').where('state', '=', 'issued').select('recovery_flows.id').execute();
    expect(live).toHaveLength(1);
  });

  it('takes over a claim whose lease lapsed, and the slow worker cannot finish it', async () => {
    await createUser(h, 'lease@example.test', PW);
    await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email: 'lease@example.test' });
    const { recoveryStore } = await import('./store.js');
    const [row] = await recoveryStore.claimIntake(h.s.storage.db, h.s.storage.dialect, 'slow-worker', h.clock.now(), MINUTE, 10);
    expect(row).toBeDefined();
    // Claimed: another worker does not see it.
    expect((await h.s.resetIntake.processOnce()).claimed).toBe(0);
    h.clock.advance(MINUTE + 1);
    expect((await h.s.resetIntake.processOnce()).decisions).toEqual({ sent: 1 });
    await expect(h.s.recovery.decideIntake(row!, 'slow-worker')).rejects.toThrow();
    expect(await resetRows(h, 'lease@example.test')).toHaveLength(1);
  });

  it('reports the request to the account\'s event log with the requesting address', async () => {
    const userId = await createUser(h, 'evlog@example.test', PW);
    const ip = freshIp();
    await requestReset(h, 'evlog@example.test', ip, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' });
    const [ev] = await events(userId, 'password.reset_requested');
    expect(ev).toMatchObject({ ip, device: 'Chrome 120 on Linux' });
    expect(JSON.parse(ev!.data)).toMatchObject({ decision: 'sent', strategy: 'link' });
  });

  it('can also leave a prompt in the account\'s in-app inbox (secondary confirmation port)', async () => {
    const userId = await createUser(h, 'prompt@example.test', PW);
    const s = h.s;
    const asked: string[] = [];
    const recovery = new RecoveryService({
      db: s.storage.db, dialect: s.storage.dialect, clock: s.clock, logger: s.logger, metrics: s.metrics, accounts: s.accounts, sessions: s.sessions, events: s.events,
      outbox: s.outbox, hasher: s.hasher, limiter: s.limiter, secondFactor: s.secondFactor, publicUrl: s.config.publicUrl, denyQuietMs: s.config.resetDenyQuietMs,
      prompt: { promptOnIssue: async (_db, id) => { asked.push(id); return true; } },
    });
    const worker = new ResetIntakeWorker({ db: s.storage.db, dialect: s.storage.dialect, clock: h.clock, logger: s.logger, metrics: s.metrics, recovery });
    const ip = freshIp();
    await recovery.request('Prompt@Example.test', { requestId: 'prompt-req', ip, userAgent: null });
    expect((await worker.processOnce()).decisions).toEqual({ sent: 1 });
    expect(asked).toEqual([userId]);
    const rows = await h.s.storage.db.selectFrom('outbox').selectAll().where('user_id', '=', userId).orderBy('id').execute();
    expect(rows.map((r) => [r.type, r.channel, r.recipient])).toEqual([['password_reset', 'email', 'prompt@example.test'], ['reset_prompt', 'inbox', userId]]);
    expect(rows[1]).toMatchObject({ cause_kind: 'anonymous', cause_id: 'prompt-req', cause_ip: ip, sealed: null });
    expect(JSON.parse(rows[1]!.payload)).toEqual({ requestedAt: new Date(h.clock.now()).toISOString(), ip });
  });

  it('documents the recovery API in OpenAPI with closed schemas', async () => {
    const oa = await call(h.app, 'GET', '/openapi.json');
    for (const p of ['/api/v1/password-resets', '/api/v1/password-resets/confirm', '/api/v1/password-resets/deny']) {
      const op = oa.json.paths[p].post;
      expect(op.tags).toEqual(['recovery']);
      expect(op.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    }
    expect(Object.keys(oa.json.paths['/api/v1/password-resets'].post.responses).sort()).toEqual(['202', '400', '403', '428', '429']);
    expect(oa.json.paths['/reset'].get.tags).toEqual(['recovery']);
  });

  it('forgets flows and quiet marks after the retention period (run last: it moves the clock a month)', async () => {
    const userId = await createUser(h, 'old@example.test', PW);
    await requestReset(h, 'old@example.test');
    const flows = () => h.s.storage.db.selectFrom('recovery_flows').select('id').where('user_id', '=', userId).execute();
    expect(await flows()).toHaveLength(1);
    h.clock.advance(31 * DAY);
    await h.s.resetIntake.processOnce();
    expect(await flows()).toHaveLength(0);
    expect(await h.s.storage.db.selectFrom('recovery_accounts').select('user_id').where('user_id', '=', userId).execute()).toHaveLength(0);
  });
});
