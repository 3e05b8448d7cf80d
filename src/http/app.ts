/**
 * buildApp(services) -> Fastify instance, separate from listen() so tests use inject().
 * Security posture: bodies capped (64 KiB, imports streamed with their own cap), unknown fields
 * and wrong types refused (no coercion, no silent stripping), helmet headers and a CSP without
 * inline script, request ids on every answer, nothing secret in logs.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { AppError } from '../kernel/errors.js';
import type { Services } from '../services.js';
import { sendProblem, toAppError } from './problem.js';
import { clientIp } from './context.js';
import { requireOperator } from './auth.js';
import { decorateCookies } from './cookies.js';
import { accountsRoutes } from '../modules/accounts/routes.js';
import { sessionsRoutes } from '../modules/sessions/routes.js';
import { incidentsRoutes } from '../modules/incidents/routes.js';
import { notificationsRoutes } from '../modules/notifications/routes.js';
import { mfaRoutes } from '../modules/mfa/routes.js';
import { recoveryPages, recoveryRoutes } from '../modules/recovery/index.js';
import { webAssets } from '../web/assets.js';
import { webPages } from '../web/index.js';
import { messagesRoutes } from '../modules/notifications/messages.js';
import { guardRoutes } from '../modules/guard/routes.js';
import { notMeRoutes } from '../modules/sessions/not-me-routes.js';

export type App = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;
export type MetricsApp = FastifyInstance<any, any, any, any>;

export const BODY_LIMIT = 64 * 1024;

/** How long /readyz waits for each dependency. */
const READY_PROBE_MS = 1000;

/** Content types the JSON API accepts: JSON, and NDJSON for imports (nothing a cross-site form can send). */
const API_BODY_TYPE = /^\s*application\/(?:json|x-ndjson)\s*(?:;|$)/i;

const REQ_PREFIX = randomBytes(4).toString('base64url').slice(0, 6);
let reqSeq = 0;

/** Extra route plugins (later modules register through this list in main.ts). */
export type RoutePlugin = (app: App, services: Services) => void | Promise<void>;

export async function buildApp(services: Services, plugins: RoutePlugin[] = []): Promise<App> {
  const { config, metrics } = services;
  const app = Fastify({
    loggerInstance: services.logger,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy.length ? [...config.trustProxy] : false,
    bodyLimit: BODY_LIMIT,
    // Request ids only need to be unique, not secret: a random per-process prefix and a counter
    // (a CSPRNG call per request showed up in the flood profile).
    genReqId: () => `${REQ_PREFIX}${(reqSeq++).toString(36).padStart(6, '0')}`,
    requestIdHeader: false,
    return503OnClosing: true,
    connectionTimeout: 30_000,
    requestTimeout: 60_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    routerOptions: { maxParamLength: 200 },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Every route, for the property-based test that throws random input at all of them.
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m, url: r.url });
  });
  app.decorate('floodgateRoutes', routes);

  const headers = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        workerSrc: ["'self'", 'blob:'],
        fontSrc: ["'self'"],
        upgradeInsecureRequests: config.publicUrl.startsWith('https:') ? [] : null,
      },
    },
    strictTransportSecurity: config.publicUrl.startsWith('https:') ? { maxAge: 31536000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
  // JSON answers are never rendered as documents, so most of helmet's set (CSP fetch directives,
  // COOP, Origin-Agent-Cluster, DNS prefetch...) does nothing for them. The API gets the headers
  // that do something for JSON (OWASP REST Security Cheat Sheet): nosniff, a CSP and frame
  // options that forbid framing and loading anything, same-origin CORP against cross-origin
  // reads, no referrer, no caching, HSTS on https. Half the bytes on every answer of a flood.
  const apiHeaders = apiSecurityHeaders(config.publicUrl.startsWith('https:'));
  app.addHook('onRequest', (req, reply, done) => {
    const api = req.url.startsWith('/api/');
    reply.headers(api ? apiHeaders : headers);
    reply.header('x-request-id', req.id);
    // The API takes JSON (and NDJSON imports) only. Forms are for the hosted pages: a form is
    // the one body another site's page can post here without a CORS preflight, so accepting it
    // under /api/ would let any site sign a visitor in (login CSRF) or make every visitor a
    // fresh source of sign-up and verification mail. Refused before anything is parsed.
    const type = req.headers['content-type'];
    if (api && type !== undefined && !API_BODY_TYPE.test(type)) {
      done(new AppError('unsupported_media_type', 'The API takes application/json only (application/x-ndjson for imports); forms are for the hosted pages.'));
      return;
    }
    done();
  });

  // Access log without bodies, queries or headers: nothing secret, no emails. The metric children
  // are looked up once per method, route and status (a bounded set: the routes are ours).
  const children = new Map<string, { count: { inc(): void }; duration: { observe(v: number): void } }>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const key = `${req.method} ${route} ${status}`;
    let c = children.get(key);
    if (!c) {
      c = { count: metrics.httpRequests.labels({ method: req.method, route, status: String(status) }), duration: metrics.httpDuration.labels({ method: req.method, route }) };
      children.set(key, c);
    }
    c.count.inc();
    c.duration.observe(reply.elapsedTime / 1000);
    if ((req.log as Logger).isLevelEnabled('info')) req.log.info({ method: req.method, route, status, ms: Math.round(reply.elapsedTime * 10) / 10, ip: clientIp(req) }, 'request');
    done();
  });

  await app.register(cookie);
  decorateCookies(app, config.publicUrl.startsWith('https:'));
  await app.register(formbody, { bodyLimit: BODY_LIMIT });

  // JSON (and forms for the hosted pages) only: a text/plain body is a 415, not a string to validate.
  app.removeContentTypeParser('text/plain');
  // NDJSON imports arrive as a stream; the route reads it line by line with its own byte cap.
  app.addContentTypeParser('application/x-ndjson', { bodyLimit: 512 * 1024 * 1024 }, (_req, payload, done) => done(null, payload));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Floodgate API', version: '1', description: 'Account security: sign-up, sign-in, sessions, MFA, password recovery and notifications that cannot be turned into a flood. Errors are application/problem+json (RFC 9457).' },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          session: { type: 'http', scheme: 'bearer', description: 'Session token from POST /api/v1/sessions (or the floodgate_session cookie)' },
          operator: { type: 'http', scheme: 'bearer', description: 'FLOODGATE_ADMIN_TOKEN or a token from `floodgate operators create`' },
        },
      },
    },
  });

  app.setErrorHandler((err, req, reply) => {
    const appErr = toAppError(err);
    if (appErr?.code === 'unavailable') req.log.warn({ reqId: req.id, err: { message: err instanceof Error ? err.message : String(err) } }, 'database unavailable');
    if (appErr) return sendProblem(reply, req, appErr);
    req.log.error({ err, reqId: req.id }, 'unhandled error');
    return sendProblem(reply, req, new AppError('internal', 'Something went wrong on our side. The request id identifies it in the logs.'));
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, req, new AppError('not_found', `No route for ${req.method} ${req.url.split('?')[0]!.slice(0, 100)}`)));


  // Liveness: the process serves (a restart would not help while a dependency is away: it
  // recovers by itself). Readiness: whether to send it traffic now, from quick probes of what
  // every request needs.
  app.get('/healthz', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    const probe = async (p: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error('timeout')), READY_PROBE_MS); });
      try {
        await Promise.race([p, timeout]);
        return 'ok';
      } catch (e) {
        return e instanceof Error && e.message === 'timeout' ? `no answer within ${READY_PROBE_MS} ms` : 'unreachable';
      } finally {
        clearTimeout(timer);
      }
    };
    const [database, counters] = await Promise.all([probe(sql`select 1`.execute(services.storage.db)), probe(services.guardStore.getValue('readyz'))]);
    const ready = database === 'ok' && counters === 'ok';
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not_ready', checks: { database, counters: services.guardStore.kind === 'redis' ? counters : 'in-process' } };
  });
  // Metrics never tell accounts apart to the public: with a listener of their own (loopback by
  // default) the main one has none; otherwise operators (Bearer token) get every metric and
  // anyone else only the account-independent ones (process, HTTP by route and status, logs).
  if (!config.metrics) {
    app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
      const registry = req.headers.authorization === undefined ? metrics.publicRegistry : (await requireOperator(services, req), metrics.registry);
      reply.header('cache-control', 'no-store');
      reply.type(registry.contentType);
      return registry.metrics();
    });
  }
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await accountsRoutes(app, services);
  await sessionsRoutes(app, services);
  await incidentsRoutes(app, services);
  await notificationsRoutes(app, services);
  await mfaRoutes(app, services);
  await recoveryRoutes(app, services);
  await recoveryPages(app, services);
  await webAssets(app);
  await webPages(app, services);
  await messagesRoutes(app, services);
  await guardRoutes(app, services);
  await notMeRoutes(app, services);
  for (const p of plugins) await p(app, services);
  return app;
}

/**
 * The metrics listener (FLOODGATE_METRICS_PORT): every metric, no token, nothing else. It is
 * meant for loopback or a private network, where only the scraper can reach it.
 */
export function buildMetricsApp(metrics: Services['metrics'], logger: Logger): MetricsApp {
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: true });
  app.get('/metrics', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, req, new AppError('not_found', 'This listener serves GET /metrics only.')));
  return app;
}

/**
 * The security headers, computed once at boot by helmet and set on every answer. Why not
 * @fastify/helmet: it runs helmet's middleware per request, which parses the CSP directives
 * again each time; under a flood of 428s that was a tenth of the cost of an answer.
 */
export function securityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) { headers[name.toLowerCase()] = String(value); },
    removeHeader(name: string) { delete headers[name.toLowerCase()]; },
  };
  helmet(options)({} as never, res as never, (err?: unknown) => { if (err) throw err; });
  return Object.freeze(headers) as Record<string, string>;
}

/** The security headers of JSON API answers (see buildApp). */
export function apiSecurityHeaders(https: boolean): Record<string, string> {
  return Object.freeze({
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cross-origin-resource-policy': 'same-origin',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
    ...(https ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : {}),
  }) as Record<string, string>;
}

export type { FastifyReply, FastifyRequest };
