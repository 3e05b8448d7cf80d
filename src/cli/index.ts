/**
 * The floodgate command. Reads the environment (and ./.env) once, here, and hands a frozen
 * Config to everything else. A bad configuration ends with a message naming each bad variable
 * and exit code 2, never a stack trace.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import dotenv from 'dotenv';
import type { Logger } from 'pino';
import { ConfigError, configReferenceMarkdown, isLoopbackOrigin, loadConfig, type Config } from '../config/schema.js';
import { CLI_CONTEXT } from '../kernel/context.js';
import { createFloodgate, createLogger, createServices, logStreamOf } from '../main.js';
import { openStorage } from '../storage/database.js';
import type { Services } from '../services.js';
import { migrateToLatest } from '../storage/migrator.js';
import { consoleAccess } from '../web/console/index.js';

function env(): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = {};
  if (existsSync('.env')) Object.assign(merged, dotenv.parse(readFileSync('.env')));
  return { ...merged, ...process.env };
}

function config(): Config {
  try {
    return loadConfig(env());
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`floodgate: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`floodgate: ${msg}\n`);
  process.exit(1);
}

/** Exit once the last log lines reached standard output, or after `waitMs` if its reader stopped reading. */
async function exitAfterLogs(logger: Logger, code: number, waitMs = 2000): Promise<never> {
  await logStreamOf(logger)?.flush(waitMs);
  process.exit(code);
}

/**
 * Run a one-shot command against the services: configured from the environment, quiet logs, and
 * every connection closed afterwards (the database and, with FLOODGATE_REDIS_URL, Redis, which
 * would otherwise keep the process alive). Any failure ends with a message and exit code 1.
 */
async function withServices(fn: (s: Services) => Promise<void>): Promise<void> {
  const cfg = config();
  let s: Services | undefined;
  try {
    s = await createServices(cfg, { logger: createLogger({ ...cfg, logLevel: 'warn' }) });
    await fn(s);
  } catch (e) {
    fail(e);
  } finally {
    await s?.storage.close().catch(() => {});
    await s?.guardStore.close().catch(() => {});
  }
}

const program = new Command();
program.name('floodgate').description('Self-hosted account security that cannot be turned into a flood.').showHelpAfterError();

program
  .command('serve')
  .description('Run the HTTP API, hosted pages and (by default) the courier. Configured by FLOODGATE_* variables.')
  .action(async () => {
    const cfg = config();
    const logger = createLogger(cfg);
    let fg;
    try {
      fg = await createFloodgate(cfg, { logger, startWorkers: true });
    } catch (e) {
      fail(e);
    }
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests and the current courier batch');
      const force = setTimeout(() => {
        logger.error('shutdown took longer than 20 s; exiting');
        void exitAfterLogs(logger, 1, 1000);
      }, 20_000);
      force.unref();
      await fg.close();
      logger.info('stopped');
      await exitAfterLogs(logger, 0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    try {
      await fg.app.listen({ port: cfg.port, host: cfg.host });
      if (fg.metricsApp && cfg.metrics) {
        await fg.metricsApp.listen({ port: cfg.metrics.port, host: cfg.metrics.host });
        logger.info({ metrics: fg.metricsApp.listeningOrigin }, `metrics on ${fg.metricsApp.listeningOrigin}/metrics`);
      }
    } catch (e) {
      await fg.close().catch(() => {});
      fail(e);
    }
    // Plain http beyond this machine: cookies are not Secure, no HSTS, and every token crosses the network in clear.
    if (cfg.publicUrl.startsWith('http:') && !isLoopbackOrigin(cfg.publicUrl)) logger.warn({ publicUrl: cfg.publicUrl }, 'FLOODGATE_PUBLIC_URL is plain http on a non-loopback host: session cookies cannot be Secure and links carry tokens in clear; use https in production');
    const addr = fg.app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
    logger.info({ listen: `http://${cfg.host}:${port}`, publicUrl: cfg.publicUrl, database: cfg.database.kind, courier: cfg.courier }, `Floodgate is serving on http://${cfg.host}:${port} (public URL ${cfg.publicUrl})`);
  });

program
  .command('migrate')
  .description('Apply pending database migrations (serve also does this on start).')
  .action(async () => {
    const cfg = config();
    try {
      const storage = await openStorage(cfg.database, { migrate: false });
      const applied = await migrateToLatest(storage.db);
      await storage.close();
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    } catch (e) {
      fail(e);
    }
  });

const users = program.command('users').description('Manage user accounts.');
users
  .command('import')
  .argument('<file>', 'NDJSON file: one {"email", "password" | "passwordHash", "emailVerified"} per line ("-" for standard input)')
  .description('Import users; per-line errors are reported with line numbers, nothing is half-written.')
  .action(async (file: string) => {
    await withServices(async (s) => {
      const input = file === '-' ? process.stdin : createReadStream(file);
      const report = await s.accounts.importLines(createInterface({ input, crlfDelay: Infinity }), CLI_CONTEXT, 'cli');
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      process.exitCode = report.failed ? 1 : 0;
    });
  });

const operators = program.command('operators').description('Manage operator tokens for the admin API.');
operators
  .command('create')
  .argument('<name>', 'operator name (letters, digits, . _ @ -)')
  .description('Create a named operator token; it is printed once and only its hash is stored.')
  .action(async (name: string) => {
    await withServices(async (s) => {
      const { token } = await s.operators.create(name);
      process.stdout.write(`${token}\n`);
    });
  });
operators
  .command('revoke')
  .argument('<name>', 'operator name')
  .description('Revoke a named operator token.')
  .action(async (name: string) => {
    await withServices(async (s) => {
      const ok = await s.operators.revoke(name);
      process.stdout.write(ok ? `revoked ${name}\n` : `no live operator named ${name}\n`);
      process.exitCode = ok ? 0 : 1;
    });
  });

// The operator console: a user account granted the operator role (it signs in with its password and a second factor).
const CLI_OPERATOR = { id: 'cli', name: 'cli' };
operators
  .command('grant')
  .argument('<email>', 'an existing account')
  .description('Let an existing account sign in to the operator console (/console); it needs two-step verification to do so.')
  .action(async (email: string) => {
    await withServices(async (s) => {
      const r = await consoleAccess(s).grant(email, CLI_OPERATOR, 'granted from the command line');
      const mfa = await s.mfa.factors.enabled(s.storage.db, r.userId);
      process.stdout.write(`granted the console operator role to ${r.email}\n`);
      if (!mfa) process.stderr.write(`note: ${r.email} has no two-step verification yet; the console refuses it until an authenticator app is set up on /security\n`);
    });
  });
operators
  .command('revoke-grant')
  .argument('<email>', 'an account granted the console operator role')
  .description('Take the console operator role away; its console sessions end at once.')
  .action(async (email: string) => {
    await withServices(async (s) => {
      const ok = await consoleAccess(s).revokeGrant(email, CLI_OPERATOR, 'revoked from the command line');
      process.stdout.write(ok ? `revoked the console operator role of ${email}\n` : `${email} has no console operator role\n`);
      process.exitCode = ok ? 0 : 1;
    });
  });

const sessionsCmd = program.command('sessions').description('Manage the sessions of every account.');
sessionsCmd
  .command('revoke-all')
  .requiredOption('--reason <text>', 'why (kept in the audit log), e.g. "credential leak, incident 42"')
  .description('Sign every account out everywhere: every live session is revoked at once, in one audited action. Device cookies stay, so owners who sign in again are not new devices.')
  .action(async (opts: { reason: string }) => {
    await withServices(async (s) => {
      const n = await s.storage.db.transaction().execute(async (trx) => {
        const revoked = await s.sessions.revokeEveryone(trx, 'operator:everyone');
        await s.audit.record(trx, CLI_OPERATOR, 'sessions.revoke_all', '*', opts.reason, { sessions: revoked });
        return revoked;
      });
      process.stdout.write(`revoked ${n} live session${n === 1 ? '' : 's'} of every account\n`);
    });
  });

program
  .command('courier')
  .description('Run only the courier: deliver the outbox until SIGTERM/SIGINT (for serve with FLOODGATE_COURIER=off, or several courier workers on PostgreSQL).')
  .option('--drain', 'deliver everything that is due now, then exit (exit code 1 if a poll failed)')
  .action(async (opts: { drain?: boolean }) => {
    const cfg = config();
    const logger = createLogger(cfg);
    let s;
    try {
      s = await createServices(cfg, { logger });
    } catch (e) {
      fail(e);
    }
    const services = s;
    if (opts.drain) {
      try {
        const n = await services.courier.drain();
        process.stdout.write(`handled ${n} outbox rows\n`);
      } catch (e) {
        process.exitCode = 1;
        logger.error({ err: e }, 'courier drain failed');
      }
      await services.courier.stop();
      await services.storage.close();
      return;
    }
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'courier stopping after the current batch');
      const force = setTimeout(() => {
        logger.error('courier shutdown took longer than 20 s; exiting');
        void exitAfterLogs(logger, 1, 1000);
      }, 20_000);
      force.unref();
      await services.courier.stop();
      await services.storage.close();
      logger.info('courier stopped');
      await exitAfterLogs(logger, 0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    services.courier.start();
    logger.info({ worker: services.courier.workerId, database: cfg.database.kind, email: cfg.smtpUrl ? 'smtp' : 'dev mailbox', dkim: !!cfg.dkim }, 'courier running');
  });

program
  .command('simulate')
  .argument('<scenario>', 'reset-flood | inbox-bomb | bulk-bug | credential-stuffing')
  .description('Drive a running Floodgate with an attack (or a bulk-mail bug) while real users use it, and report what reached inboxes.')
  .requiredOption('--target <url>', 'base URL of the running Floodgate (loopback only, e.g. http://127.0.0.1:8080)')
  .option('--admin-token <token>', 'operator token of the target (default: FLOODGATE_ADMIN_TOKEN)')
  .option('--duration <seconds>', 'how long the attack runs (at most 300)', '30')
  .option('--concurrency <n>', 'attacker connections', '32')
  .option('--max-requests <n>', 'stop after this many attack requests', '200000')
  .option('--accounts <n>', 'known accounts to create and attack', '2000')
  .option('--real-users <n>', 'real users asking during the attack', '50')
  .option('--smtp-listen <port>', 'run an SMTP sink on 127.0.0.1:PORT (start the target with FLOODGATE_SMTP_URL pointing at it); default: read the dev mailbox')
  .option('--out <dir>', 'write report.md, chart.svg and report.json here', './simulation')
  .option('--quiet', 'no progress bar')
  .action(async (scenario: string, o: Record<string, string | boolean | undefined>) => {
    const { simulate, SCENARIOS, reportMarkdown } = await import('./simulate.js');
    if (!(SCENARIOS as readonly string[]).includes(scenario)) fail(`unknown scenario ${scenario}; one of ${SCENARIOS.join(', ')}`);
    const target = new URL(String(o.target));
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) fail('--target must be a loopback address: the simulator sends attack traffic');
    const num = (k: string, max: number) => {
      const v = Number(o[k]);
      if (!Number.isInteger(v) || v < 0 || v > max) fail(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} must be a whole number up to ${max}`);
      return v;
    };
    const adminToken = String(o.adminToken ?? env().FLOODGATE_ADMIN_TOKEN ?? '');
    if (!adminToken) fail('--admin-token (or FLOODGATE_ADMIN_TOKEN) is required');
    try {
      const r = await simulate({
        scenario: scenario as never, target: target.origin, adminToken,
        durationS: num('duration', 300), concurrency: Math.max(1, num('concurrency', 1024)), maxRequests: num('maxRequests', 5_000_000),
        accounts: Math.max(1, num('accounts', 200_000)), realUsers: num('realUsers', 10_000),
        smtpListen: o.smtpListen === undefined ? null : num('smtpListen', 65535), out: o.out ? String(o.out) : null, quiet: Boolean(o.quiet),
      });
      process.stdout.write(reportMarkdown(r));
      process.exitCode = r.goals.every((g) => g.met) ? 0 : 3;
    } catch (e) {
      fail(e);
    }
  });

program
  .command('config')
  .description('Print the configuration reference (Markdown), or check the current environment with --check.')
  .option('--check', 'validate the current environment and exit')
  .action((opts: { check?: boolean }) => {
    if (opts.check) {
      config();
      process.stdout.write('configuration is valid\n');
    } else process.stdout.write(configReferenceMarkdown() + '\n');
  });

await program.parseAsync(process.argv);
