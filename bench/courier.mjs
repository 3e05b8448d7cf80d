#!/usr/bin/env node
// Courier throughput next to its baseline, measured in the same run against the same local SMTP
// sink (smtp-server, discarding): raw nodemailer (pooled transport, its own DKIM signing) versus
// the courier draining N outbox rows on SQLite (claim, render, compose, DKIM sign + check, send,
// record). Prints figures; it asserts nothing. Run after `npm run build`:
//   node bench/courier.mjs [N=2000] [SMTP connections=5]
// Against a local sink both are bound by per-message round trips, so throughput grows with the
// number of pooled connections; the ratio is the figure to watch.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import pino from 'pino';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => join(root, 'dist', p);
if (!existsSync(dist('modules/notifications/index.js'))) {
  console.error('bench/courier.mjs: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
const { Courier, Outbox, renderMessage } = await import(dist('modules/notifications/index.js'));
const { SmtpChannel, loadDkimKey } = await import(dist('modules/notifications/channels/smtp.js'));
const { openStorage } = await import(dist('storage/database.js'));
const { systemClock } = await import(dist('kernel/clock.js'));
const { SecretBox } = await import(dist('kernel/crypto.js'));
const { Metrics } = await import(dist('kernel/metrics.js'));

const N = Number(process.argv[2] ?? 2000);
const POOL = Number(process.argv[3] ?? 5);
const CONCURRENCY = Math.max(8, 2 * POOL);
const PUBLIC = 'http://bench.test';
const FROM = 'Floodgate <security@example.test>';

// A sink that accepts and discards.
let received = 0;
const server = new SMTPServer({
  authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
  onData(stream, _s, cb) { stream.on('end', () => { received++; cb(); }); stream.resume(); },
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.server.address().port;
const smtpUrl = `smtp://127.0.0.1:${port}`;

const dir = mkdtempSync(join(tmpdir(), 'floodgate-bench-'));
const keyFile = join(dir, 'dkim.pem');
writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
const dkim = loadDkimKey({ domain: 'example.test', selector: 'bench', keyFile });

const token = () => `${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
const resetData = (i) => ({ email: `user${i}@example.test`, expiresInMinutes: 30 });
const resetSecret = () => { const t = token(); return { resetLink: `${PUBLIC}/reset?token=${t}`, denyLink: `${PUBLIC}/reset/deny?token=${t}` }; };

// ---- baseline: nodemailer alone ----------------------------------------------------------------
const transport = nodemailer.createTransport({ pool: true, host: '127.0.0.1', port, secure: false, maxConnections: POOL, maxMessages: 1000, dkim: { domainName: 'example.test', keySelector: 'bench', privateKey: dkim.privateKey } });
const mails = Array.from({ length: N }, (_, i) => ({ i, ...renderMessage('password_reset', resetData(i), resetSecret(), { publicUrl: PUBLIC }) }));
received = 0;
let t0 = performance.now();
await Promise.all(mails.map((m) => transport.sendMail({ from: FROM, to: `user${m.i}@example.test`, subject: m.subject, text: m.text, html: m.html })));
const rawSecs = (performance.now() - t0) / 1000;
transport.close();
if (received !== N) throw new Error(`baseline: the sink got ${received} of ${N}`);

// ---- the courier ----------------------------------------------------------------------------------
const storage = await openStorage({ kind: 'sqlite', file: join(dir, 'floodgate.db') });
const box = new SecretBox(randomBytes(32));
const outbox = new Outbox(systemClock, box);
t0 = performance.now();
for (let i = 0; i < N; i++) {
  await storage.db.transaction().execute((trx) => outbox.enqueue(trx, { type: 'password_reset', channel: 'email', userId: null, recipient: `user${i}@example.test`, cause: { kind: 'job', jobId: `bench-${i}` }, data: resetData(i), secret: resetSecret() }));
}
const enqueueSecs = (performance.now() - t0) / 1000;
const channel = new SmtpChannel({ url: smtpUrl, from: FROM, clock: systemClock, dkim, maxConnections: POOL });
const courier = new Courier({ db: storage.db, dialect: 'sqlite', clock: systemClock, logger: pino({ level: 'silent' }), metrics: new Metrics(), outbox, publicUrl: PUBLIC, channels: { email: channel }, concurrency: CONCURRENCY, batchSize: Math.max(50, 4 * CONCURRENCY) });
received = 0;
t0 = performance.now();
const handled = await courier.drain();
const courierSecs = (performance.now() - t0) / 1000;
await courier.stop();
const sent = await storage.db.selectFrom('outbox').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'sent').executeTakeFirst();
await storage.close();
await new Promise((r) => server.close(r));
rmSync(dir, { recursive: true, force: true });
if (received !== N || Number(sent.n) !== N || handled !== N) throw new Error(`courier: sink got ${received}, sent rows ${sent.n}, handled ${handled}, of ${N}`);

const rate = (n, s) => (n / s).toFixed(0).padStart(6);
console.log(`courier bench: ${N} password-reset mails, DKIM rsa-2048, pooled SMTP (${POOL} connections, courier concurrency ${CONCURRENCY}, batch ${Math.max(50, 4 * CONCURRENCY)}) to a local discarding smtp-server, Node ${process.version}`);
console.log(`  nodemailer raw (baseline)      ${rate(N, rawSecs)} msg/s   (${rawSecs.toFixed(2)} s)`);
console.log(`  outbox enqueue (SQLite, 1 tx)  ${rate(N, enqueueSecs)} rows/s  (${enqueueSecs.toFixed(2)} s)`);
console.log(`  courier drain (SQLite)         ${rate(N, courierSecs)} msg/s   (${courierSecs.toFixed(2)} s)`);
console.log(`  courier / raw                  ${(rawSecs / courierSecs).toFixed(2)}x`);
