import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../kernel/context.js';
import { cookieName, readCookie } from './cookies.js';

const IP = Symbol('floodgate.clientIp');

/**
 * The client address (the socket's, or X-Forwarded-For's as far as FLOODGATE_TRUST_PROXY allows),
 * worked out once per request: Fastify's `req.ip` walks the proxy chain again on every read.
 */
export function clientIp(req: FastifyRequest): string | null {
  const r = req as FastifyRequest & { [IP]?: string | null };
  if (r[IP] === undefined) r[IP] = req.ip ?? null;
  return r[IP];
}

export function ctxOf(req: FastifyRequest): RequestContext {
  const ua = req.headers['user-agent'];
  const device = readCookie(req, 'device');
  const ctx: RequestContext = { requestId: req.id, ip: clientIp(req), userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null };
  if (typeof device === 'string' && device) ctx.device = device;
  return ctx;
}

/** The session cookie's name on http (on https it is `__Host-floodgate_session`: see cookies.ts). */
export const SESSION_COOKIE = cookieName('session', false);
/**
 * The long-lived device cookie set on each successful sign-in (OWASP "device cookies"; see
 * src/modules/sessions/devices.ts), named as on http (`__Host-floodgate_device` on https).
 */
export const DEVICE_COOKIE = cookieName('device', false);

/** Pages and answers that carry tokens: never cached, never leaked through Referer. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('referrer-policy', 'no-referrer');
}
