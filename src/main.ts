/**
 * Composition root: config -> adapters -> services -> HTTP app and courier. The only place that
 * wires concrete implementations; nothing below reads process.env.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { configWarnings, decodeKey, type Config } from './config/schema.js';
import { systemClock, type Clock } from './kernel/clock.js';
import { SecretBox } from './kernel/crypto.js';
import { LogStream } from './kernel/log-stream.js';
import { Metrics } from './kernel/metrics.js';
import { openStorage, type Storage } from './storage/database.js';
import { AccountsService, DEFAULT_ARGON2, PasswordHasher, type BreachedPasswords } from './modules/accounts/index.js';
import { AuditLog, Incidents, SecurityEvents } from './modules/incidents/index.js';
import { createCourier, DigestWorker, Outbox } from './modules/notifications/index.js';
import { OperatorsService } from './modules/operators/index.js';
import { DeviceCookies, NewDeviceNotices, NotMeService, SessionsService, SignInFlow } from './modules/sessions/index.js';
import { Redis } from 'ioredis';
import { Broadcasts, ChallengeService, Guard, GuardSignInThrottle, MemoryGuardStore, OutboundGuard, RedisGuardStore, resetGuard, type GuardStore } from './modules/guard/index.js';
import { RecoveryService, ResetIntakeWorker } from './modules/recovery/index.js';
import { createMfa, defaultBreachedList, wipeFactors } from './modules/mfa/index.js';
import { buildApp, buildMetricsApp, type App, type MetricsApp } from './http/app.js';
import { grantedOperatorIds } from './web/console/index.js';
import type { Services } from './services.js';

export interface CreateOptions {
  clock?: Clock;
  logger?: Logger;
  /** Open this storage instead of config.database (tests pass a per-test PostgreSQL schema). */
  storage?: Storage;
  metrics?: Metrics;
  hasher?: PasswordHasher;
  breached?: BreachedPasswords;
  /** Use this guard store (tests share one between instances, or use Redis). */
  guardStore?: GuardStore;
  /** Start the background workers (serve does; tests drive them by hand). */
  startWorkers?: boolean;
  /** On close, connections still open after this long are cut (default 10 s). */
  shutdownGraceMs?: number;
}

/** The service's logger: JSON lines on standard output through a LogStream (never blocks the event loop). */
export function createLogger(config: Config, stream: LogStream = new LogStream()): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'floodgate' },
    // Defence in depth: these never reach a log line even if someone logs a request or a body.
    redact: {
      paths: ['password', 'token', 'otp', 'secret', '*.password', '*.token', '*.otp', '*.secret', 'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'body'],
      censor: '[redacted]',
    },
  }, stream);
}

/** The LogStream a logger writes to, if it is one (loggers that tests pass in are not). */
export function logStreamOf(logger: Logger): LogStream | null {
  const s = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return s instanceof LogStream ? s : null;
}

/** The key that seals secrets at rest: from config, or generated once into the data directory. */
export function loadSecretKey(config: Config): Buffer {
  if (config.secretKey) return decodeKey(config.secretKey)!;
  const file = join(config.dataDir, 'secret.key');
  if (existsSync(file)) {
    const k = decodeKey(readFileSync(file, 'utf8'));
    if (!k) throw new Error(`${file} does not hold a 32-byte key; remove it only if nothing was sealed with it`);
    return k;
  }
  mkdirSync(dirname(file), { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return key;
}

export async function createServices(config: Config, opts: CreateOptions = {}): Promise<Services> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(config);
  const storage = opts.storage ?? (await openStorage(config.database, { onConnectionError: (e) => logger.warn({ err: { message: e.message, code: (e as { code?: unknown }).code } }, 'database connection lost; reconnecting on the next query') }));
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: true });
  const box = new SecretBox(loadSecretKey(config));
  const events = new SecurityEvents(clock);
  const outbox = new Outbox(clock, box);
  const hasher = opts.hasher ?? new PasswordHasher(DEFAULT_ARGON2, { concurrency: config.hashConcurrency });
  metrics.hashLoad = () => hasher.load;
  const logStream = logStreamOf(logger);
  if (logStream) metrics.logLinesDropped = () => logStream.dropped;
  const db = storage.db;
  // Known-breached passwords: the local list, plus the range API when FLOODGATE_PWNED_RANGE_URL is set.
  const breached = opts.breached ?? defaultBreachedList(config.pwnedRangeUrl, (reason) => logger.warn({ reason }, 'breached-password range API unavailable; local list only'));
  const accounts = new AccountsService({ db, clock, hasher, breached, events, outbox, publicUrl: config.publicUrl, logger });
  const sessions = new SessionsService({ db, clock, events, idleMs: config.sessionIdleMs, absoluteMs: config.sessionAbsoluteMs });
  // Shared counters: Redis when configured (several instances share one view), else in-process.
  const store: GuardStore = opts.guardStore ?? (config.redisUrl ? new RedisGuardStore(new Redis(config.redisUrl, { maxRetriesPerRequest: 2, enableOfflineQueue: true }), clock) : new MemoryGuardStore(clock));
  const limiter = store;
  const challenges = new ChallengeService(box.key, clock, store);
  const audit = new AuditLog(db, clock);
  let guard: Guard;
  const incidents = new Incidents(db, clock, () => guard.unknownShare('reset'));
  guard = new Guard({
    store, clock, metrics, challenges, logger,
    // Every mode change: a security event, an incident opened (or closed), and an operator alert.
    onModeChange: async (c) => {
      const summary = { flow: c.flow, from: c.from, to: c.to, pressure: Math.round(c.pressure * 100) / 100, byOperator: c.byOperator, signals: c.signals.filter((x) => x.ratio >= 1).map((x) => x.name) };
      await db.transaction().execute(async (trx) => {
        await events.record(trx, 'guard.mode_changed', null, null, summary);
        if (c.to === 'normal') await incidents.close(trx, `guard:${c.flow}`);
        else await incidents.open(trx, `guard:${c.flow}`, `Guard: ${c.flow} flow escalated to ${c.to}`, summary);
        if (config.webhook) {
          await outbox.enqueue(trx, {
            type: 'operator_alert', channel: 'webhook', userId: null, recipient: config.webhook.url, cause: { kind: 'job', jobId: `guard:${c.flow}:${clock.now()}` },
            data: { title: `Floodgate guard: ${c.flow} ${c.from} -> ${c.to}`, text: JSON.stringify(summary) },
          });
        }
      });
    },
  });
  // Passkey sign-ins end through the sign-in flow too (its observers), bound late: the flow needs mfa's second factor.
  let signIn: SignInFlow;
  const signIns = { completeSignIn: (...a: Parameters<SignInFlow['completeSignIn']>) => signIn.completeSignIn(...a) };
  const mfa = createMfa({ db, clock, box, events, outbox, limiter, accounts, sessions, hasher, breached, publicUrl: config.publicUrl, signIns });
  const secondFactor = mfa.secondFactor;
  signIn = new SignInFlow({
    db, clock, accounts, sessions, events, metrics, throttle: new GuardSignInThrottle(store, clock), secondFactor,
    observers: [new NewDeviceNotices({ clock, outbox, publicUrl: config.publicUrl })], devices: new DeviceCookies(clock),
  });
  // The first proof of an address (verification link, completed reset) clears what was made on the account before it.
  accounts.onMailboxProven((trx, userId) => sessions.endAllAccess(trx, userId, 'email_verified'));
  accounts.onMailboxProven((trx, userId) => wipeFactors(trx, userId));
  const operators = new OperatorsService(db, clock, config.adminToken, store);
  let recovery: RecoveryService;
  const outbound = new OutboundGuard({
    db, store, clock, metrics, incidents, audit, logger, blastRadius: config.blastRadius,
    holds: { 'flow:reset': { count: () => recovery.heldCount(), release: () => recovery.releaseHeld(), discard: () => recovery.discardHeld() } },
  });
  recovery = new RecoveryService({
    db, dialect: storage.dialect, clock, logger, metrics, accounts, sessions, events, outbox, hasher, limiter, secondFactor,
    publicUrl: config.publicUrl, denyQuietMs: config.resetDenyQuietMs,
    guard: resetGuard({ guard, outbound, recentDevice: (userId) => sessions.hasRecentSession(userId, 14 * 86_400_000) }),
  });
  // A password change (reset, change) kills every live reset link in its own transaction.
  accounts.onPasswordChanged(async (trx, userId) => { await recovery.supersedeIssued(trx, userId, 'password_changed'); });
  const resetIntake = new ResetIntakeWorker({ db, dialect: storage.dialect, clock, logger, metrics, recovery });
  const notMe = new NotMeService({ db, clock, sessions, accounts, events, limiter, resets: recovery });
  const digests = new DigestWorker({ db, clock, logger, outbox, publicUrl: config.publicUrl, emailOf: async (id) => (await accounts.findById(id))?.email ?? null });
  // Reads the DKIM key once: a missing or unusable key is a boot error (mail never goes out unsigned).
  const courier = createCourier({ config, storage, clock, logger, metrics, outbox, box, gate: outbound });
  const broadcasts = new Broadcasts({
    db, clock, outbox, accounts, audit, outbound, blastRadius: config.blastRadius, approvals: config.approvals,
    operatorIds: async () => [...(await operators.liveIds()), ...(await grantedOperatorIds(db))],
  });
  return { incidents, audit, outbound, broadcasts, courierWake: () => courier.wake(), config, clock, logger, storage, metrics, box, events, outbox, hasher, accounts, sessions, signIn, operators, limiter, secondFactor, mfa, recovery, resetIntake, courier, workers: [resetIntake, digests, ...(config.courier === 'in-process' ? [courier] : [])], guardStore: store, guard, challenges, notMe, digests };
}

export interface Floodgate {
  services: Services;
  app: App;
  /** The metrics listener's app when FLOODGATE_METRICS_PORT is set (serve listens on it). */
  metricsApp: MetricsApp | null;
  close(): Promise<void>;
}

export async function createFloodgate(config: Config, opts: CreateOptions = {}): Promise<Floodgate> {
  const services = await createServices(config, opts);
  // At boot of the server (not of one-shot CLI commands, whose standard output may be a token).
  for (const warning of configWarnings(config)) services.logger.warn({ config: 'warning' }, warning);
  const app = await buildApp(services);
  const metricsApp = config.metrics ? buildMetricsApp(services.metrics, services.logger) : null;
  if (opts.startWorkers) for (const w of services.workers) w.start();
  let closed = false;
  return {
    services,
    app,
    metricsApp,
    async close() {
      if (closed) return;
      closed = true;
      // Stop taking requests and finish in-flight ones, then let workers finish their batch. A
      // client that never finishes its request (a slow or half-sent one) is cut off after the
      // grace period, so it cannot hold the shutdown, the courier's batch and the database open.
      const cut = setTimeout(() => app.server.closeAllConnections(), opts.shutdownGraceMs ?? 10_000);
      cut.unref();
      await Promise.all([app.close(), metricsApp?.close()]);
      clearTimeout(cut);
      await Promise.all(services.workers.map((w) => w.stop()));
      await services.courier.stop(); // idempotent; closes pooled SMTP connections even when it ran outside `workers`
      if (!opts.storage) await services.storage.close();
      if (!opts.hasher) await services.hasher.close();
      if (!opts.guardStore) await services.guardStore.close();
    },
  };
}
