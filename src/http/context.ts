import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../kernel/context.js';

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
  const device = req.cookies?.[DEVICE_COOKIE];
  const ctx: RequestContext = { requestId: req.id, ip: clientIp(req), userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null };
  if (typeof device === 'string' && device) ctx.device = device;
  return ctx;
}

export const SESSION_COOKIE = 'floodgate_session';
/**
 * The long-lived device cookie set on each successful sign-in (OWASP "device cookies"; see
 * src/modules/sessions/devices.ts). One constant, so it can become `__Host-floodgate_device` on
 * https (Path=/ and Secure are already how it is set, and it never has a Domain).
 */
export const DEVICE_COOKIE = 'floodgate_device';

/** Pages and answers that carry tokens: never cached, never leaked through Referer. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('referrer-policy', 'no-referrer');
}
