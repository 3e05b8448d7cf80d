import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/schema.js';
import { HOUR } from '../../kernel/clock.js';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { AT, enqueueMail, jobCause } from '../../../test/helpers/courier.js';
import { verifyWebhookSignature, WebhookChannel } from './channels/webhook.js';
import { DeliveryError } from './ports.js';
import { createCourier } from './factory.js';

const PUBLIC = 'http://floodgate.test';

describe.each(DIALECTS)('dev mailbox and in-app inbox on %s', (dialect) => {
  let h: Harness;
  const db = () => h.s.storage.db;
  // The harness's public URL is not loopback: the dev mailbox is on only when asked for.
  beforeAll(async () => { h = await makeHarness(dialect, { env: { FLOODGATE_DEV_MAILBOX: 'true' } }); });
  afterAll(async () => { await h.close(); });

  it('keeps mail in the dev mailbox (sealed at rest) and shows it escaped, with our links clickable', async () => {
    expect(h.config.devMailbox).toBe(true);
    const token = `${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    const v = await enqueueMail(h.s.outbox, db(), 'verify_email', 'Dev@Example.test', { email: 'Dev@Example.test', expiresInMinutes: 30 }, { secret: { link: `${PUBLIC}/verify?token=${token}` } });
    const b = await enqueueMail(h.s.outbox, db(), 'broadcast', 'dev@example.test', { subject: '<script>alert(1)</script> & news', text: 'Read http://phish.example/login now' });
    await h.s.courier.drain();

    const list = await call(h.app, 'GET', '/dev/mailbox');
    expect(list.status).toBe(200);
    expect(list.headers['content-type']).toMatch(/text\/html/);
    expect(list.headers['cache-control']).toBe('no-store');
    expect(String(list.headers['content-security-policy'])).toMatch(/script-src 'self'/);
    expect(list.text).not.toMatch(/<script|<style|\son\w+=/i);
    expect(list.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; news');
    expect(list.text.indexOf(b.id)).toBeLessThan(list.text.indexOf(v.id)); // newest first

    const one = await call(h.app, 'GET', `/dev/mailbox/${v.id}`);
    expect(one.status).toBe(200);
    expect(one.text).toContain(`<a href="${PUBLIC}/verify?token=${token}">`);
    expect(one.text).not.toMatch(/<script/i);
    const phish = await call(h.app, 'GET', `/dev/mailbox/${b.id}`);
    expect(phish.text).not.toMatch(/<a href="http:\/\/phish/);
    expect((await call(h.app, 'GET', '/dev/mailbox/NOPE')).status).toBe(404);

    const api = await call(h.app, 'GET', '/api/v1/dev/mailbox?to=dev@example.test&limit=10');
    expect(api.status).toBe(200);
    expect(api.json.messages.map((m: any) => m.id)).toEqual([b.id, v.id]);
    expect(api.json.messages[1].links).toEqual([`${PUBLIC}/verify?token=${token}`]);
    expect(api.json.messages[1].text).toContain('expires in 30 minutes');

    const stored = await db().selectFrom('dev_mailbox').selectAll().where('id', '=', v.id).executeTakeFirstOrThrow();
    expect(stored.text).not.toContain(token);
    if (h.dbFile) {
      let bytes = Buffer.alloc(0);
      for (const f of [h.dbFile, `${h.dbFile}-wal`]) if (existsSync(f)) bytes = Buffer.concat([bytes, readFileSync(f)]);
      expect(bytes.includes(Buffer.from(token.split('.')[1]!))).toBe(false);
    }
  });

  it('delivers inbox rows once, lists them newest first with the unread count, and marks them read', async () => {
    const alice = await createUser(h, 'alice@example.test', 'alice passphrase 123');
    await createUser(h, 'bob@example.test', 'bob passphrase 1234');
    const ta = await signIn(h, 'alice@example.test', 'alice passphrase 123');
    const tb = await signIn(h, 'bob@example.test', 'bob passphrase 1234');
    const inbox = (type: 'reset_prompt' | 'new_signin', data: Record<string, unknown>, secret?: Record<string, string>) =>
      h.s.outbox.enqueue(db(), { type, channel: 'inbox', userId: alice, recipient: alice, cause: jobCause('inbox'), data, ...(secret ? { secret } : {}) });
    const first = await inbox('reset_prompt', { requestedAt: AT, ip: '198.51.100.7' });
    h.clock.advance(1000);
    const second = await inbox('new_signin', { device: 'Firefox on Linux', at: AT }, { revokeLink: `${PUBLIC}/sessions/revoke?token=never-in-the-inbox` });
    await h.s.courier.drain();
    // A crash between delivery and record makes the courier deliver again: still one entry.
    await db().updateTable('outbox').set({ state: 'queued' }).where('id', '=', first.id).execute();
    await h.s.courier.drain();

    const list = await call(h.app, 'GET', '/api/v1/me/notifications', undefined, bearer(ta));
    expect(list.status).toBe(200);
    expect(list.json.unread).toBe(2);
    expect(list.json.notifications.map((n: any) => n.id)).toEqual([second.id, first.id]);
    expect(list.json.notifications[1]).toMatchObject({ type: 'reset_prompt', title: 'Someone asked to reset your password. Was it you?', readAt: null, data: { requestedAt: AT } });
    expect(JSON.stringify(list.json)).not.toContain('never-in-the-inbox');

    expect((await call(h.app, 'POST', `/api/v1/me/notifications/${first.id}/read`, undefined, bearer(tb))).status).toBe(404);
    expect((await call(h.app, 'POST', `/api/v1/me/notifications/${first.id}/read`, undefined, bearer(ta))).status).toBe(204);
    expect((await call(h.app, 'POST', `/api/v1/me/notifications/${first.id}/read`, undefined, bearer(ta))).status).toBe(204);
    const after = await call(h.app, 'GET', '/api/v1/me/notifications?limit=1', undefined, bearer(ta));
    expect(after.json).toMatchObject({ unread: 1, notifications: [{ id: second.id, readAt: null }] });
    const older = await call(h.app, 'GET', `/api/v1/me/notifications?before=${second.id}`, undefined, bearer(ta));
    expect(older.json.notifications).toMatchObject([{ id: first.id, readAt: expect.any(String) }]);
    expect((await call(h.app, 'GET', '/api/v1/me/notifications', undefined, bearer(tb))).json).toEqual({ notifications: [], unread: 0 });
    expect((await call(h.app, 'GET', '/api/v1/me/notifications')).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/me/notifications?limit=abc', undefined, bearer(ta))).status).toBe(400);
  });
});

describe.each(DIALECTS)('courier worker loop on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('delivers an in-process enqueue at once (wake), long before the next poll', async () => {
    const courier = createCourier({ config: h.config, storage: h.s.storage, clock: h.clock, logger: pino({ level: 'silent' }), metrics: h.s.metrics, outbox: h.s.outbox, box: h.s.box, tuning: { pollIntervalMs: 60_000 } });
    courier.start();
    try {
      await new Promise((r) => setTimeout(r, 100)); // first (empty) poll done; now asleep for a minute
      const t0 = Date.now();
      const { id } = await enqueueMail(h.s.outbox, h.s.storage.db, 'signup_existing', 'woken@example.test', { email: 'woken@example.test' });
      for (;;) {
        const r = await h.s.storage.db.selectFrom('dev_mailbox').select('id').where('id', '=', id).executeTakeFirst();
        if (r) break;
        if (Date.now() - t0 > 5000) throw new Error('not delivered within 5 s: wake() did not work');
        await new Promise((res) => setTimeout(res, 10));
      }
    } finally {
      await courier.stop();
    }
  });

  it('never answers 5xx to random input on its routes', async () => {
    const uid = await createUser(h, 'fuzz-courier@example.test', 'fuzz courier passphrase');
    const auth = bearer(await signIn(h, 'fuzz-courier@example.test', 'fuzz courier passphrase'));
    expect(uid).toBeTruthy();
    const routes = ['GET /api/v1/me/notifications', 'POST /api/v1/me/notifications/:id/read', 'GET /api/v1/dev/mailbox', 'GET /dev/mailbox', 'GET /dev/mailbox/:id'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.string({ maxLength: 80 }), fc.dictionary(fc.constantFrom('limit', 'before', 'to', 'x'), fc.string({ maxLength: 400 })), fc.boolean(), fc.string({ maxLength: 200 }), async (route, seg, query, signed, payload) => {
        const [method, path] = route.split(' ') as [string, string];
        const url = path.replace(':id', encodeURIComponent(seg) || 'x');
        const qs = new URLSearchParams(query).toString();
        const res = await h.app.inject({ method: method as 'GET', url: qs ? `${url}?${qs}` : url, headers: { ...(signed ? auth : {}), 'content-type': 'application/json' }, ...(method === 'POST' ? { payload } : {}) });
        if (res.statusCode >= 500) throw new Error(`${method} ${url} -> ${res.statusCode}: ${res.body.slice(0, 200)}`);
      }),
      { numRuns: 150 },
    );
  });
});

describe.each(DIALECTS)('dev mailbox switched off on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect, { env: { FLOODGATE_DEV_MAILBOX: 'false' } }); });
  afterAll(async () => { await h.close(); });

  it('does not register the pages or the API', async () => {
    expect((await call(h.app, 'GET', '/dev/mailbox')).status).toBe(404);
    expect((await call(h.app, 'GET', '/api/v1/dev/mailbox')).status).toBe(404);
  });
});

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

async function hookServer(): Promise<{ url: string; got: Received[]; answer: number[]; hang: boolean; close(): Promise<void>; server: Server }> {
  const state = { got: [] as Received[], answer: [] as number[], hang: false };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (state.hang) return;
      const status = state.answer.shift() ?? 204;
      res.writeHead(status, status === 302 ? { location: 'http://127.0.0.1:1/elsewhere' } : {}).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return Object.assign(state, { url, server, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) });
}

describe.each(DIALECTS)('operator webhook on %s', (dialect) => {
  let h: Harness;
  let hook: Awaited<ReturnType<typeof hookServer>>;
  const SECRET = 'whsec-0123456789abcdef';
  beforeAll(async () => {
    hook = await hookServer();
    h = await makeHarness(dialect, { env: { FLOODGATE_WEBHOOK_URL: hook.url, FLOODGATE_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(async () => { await h.close(); await hook.close(); });

  const alert = () => h.s.outbox.enqueue(h.s.storage.db, { type: 'operator_alert', channel: 'webhook', userId: null, recipient: 'operators', cause: jobCause('alert'), data: { title: 'Breaker open', text: 'password_reset:anonymous opened.' } });
  const row = (id: string) => h.s.storage.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('POSTs signed JSON that a receiver can verify (Stripe-style t.body HMAC)', async () => {
    const { id } = await alert();
    await h.s.courier.drain();
    expect(await row(id)).toMatchObject({ state: 'sent' });
    const r = hook.got.at(-1)!;
    expect(r.headers['content-type']).toBe('application/json');
    const sig = String(r.headers['x-floodgate-signature']);
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(Math.floor(h.clock.now() / 1000));
    // Recomputed independently, as a receiver in any language would.
    expect(m![2]).toBe(createHmac('sha256', SECRET).update(`${m![1]}.${r.body}`).digest('hex'));
    expect(verifyWebhookSignature(SECRET, sig, r.body, Math.floor(h.clock.now() / 1000))).toBe(true);
    expect(verifyWebhookSignature(SECRET, sig, r.body.replace('Breaker', 'Breakor'), Math.floor(h.clock.now() / 1000))).toBe(false);
    expect(verifyWebhookSignature('another-secret-0123', sig, r.body, Math.floor(h.clock.now() / 1000))).toBe(false);
    expect(verifyWebhookSignature(SECRET, sig, r.body, Math.floor(h.clock.now() / 1000) + 3600)).toBe(false); // replayed late
    expect(JSON.parse(r.body)).toMatchObject({ id, type: 'operator_alert', subject: '[Floodgate] Breaker open', text: 'password_reset:anonymous opened.', data: { title: 'Breaker open' } });
  });

  it('retries a non-2xx answer or a redirect with backoff, then delivers', async () => {
    hook.answer.push(500, 302);
    const { id } = await alert();
    await h.s.courier.pollOnce();
    expect(await row(id)).toMatchObject({ state: 'queued', attempts: 1, last_error: 'webhook: the endpoint answered 500' });
    h.clock.advance(HOUR);
    await h.s.courier.pollOnce();
    expect(await row(id)).toMatchObject({ state: 'queued', attempts: 2, last_error: 'webhook: the endpoint answered 302' });
    h.clock.advance(HOUR);
    await h.s.courier.pollOnce();
    expect(await row(id)).toMatchObject({ state: 'sent', attempts: 3 });
    expect(hook.got.filter((g) => JSON.parse(g.body).id === id)).toHaveLength(3);
  });

  it('gives up on an endpoint that does not answer within the timeout', async () => {
    hook.hang = true;
    try {
      const ch = new WebhookChannel({ url: hook.url, secret: SECRET, clock: h.clock, timeoutMs: 300 });
      const t0 = Date.now();
      const err = await ch.send({ subject: 's', text: 't', html: '<p>t</p>', body: 't' }, { ...(await row((await alert()).id)) }).catch((e) => e);
      expect(err).toBeInstanceOf(DeliveryError);
      expect(err).toMatchObject({ disposition: 'retry', message: 'webhook: no answer within the timeout' });
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      hook.hang = false;
    }
  });

  it('validates the webhook configuration', () => {
    const base = { FLOODGATE_DATABASE_URL: 'sqlite::memory:' };
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    expect(problems({ FLOODGATE_WEBHOOK_URL: 'https://ops.example.test/hook' }).join()).toMatch(/together/);
    expect(problems({ FLOODGATE_WEBHOOK_URL: 'ftp://ops.example.test/hook', FLOODGATE_WEBHOOK_SECRET: SECRET }).join()).toMatch(/FLOODGATE_WEBHOOK_URL: must be an http or https URL/);
    expect(problems({ FLOODGATE_WEBHOOK_URL: 'https://ops.example.test/hook', FLOODGATE_WEBHOOK_SECRET: 'short' }).join()).toMatch(/FLOODGATE_WEBHOOK_SECRET: must be at least 16/);
    expect(loadConfig({ ...base, FLOODGATE_WEBHOOK_URL: 'https://ops.example.test/hook', FLOODGATE_WEBHOOK_SECRET: SECRET }).webhook).toEqual({ url: 'https://ops.example.test/hook', secret: SECRET });
    expect(loadConfig(base).webhook).toBeNull();
  });
});

describe.each(DIALECTS)('webhook not configured on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('dead-letters webhook rows with a clear error instead of calling anywhere', async () => {
    const { id } = await h.s.outbox.enqueue(h.s.storage.db, { type: 'operator_alert', channel: 'webhook', userId: null, recipient: 'https://attacker.example/hook', cause: jobCause('nohook'), data: { title: 't', text: 'x' } });
    await h.s.courier.drain();
    const r = await h.s.storage.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(r).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/no channel is configured for "webhook" \(set FLOODGATE_WEBHOOK_URL/) });
  });
});
