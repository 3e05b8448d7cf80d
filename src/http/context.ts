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
  return { requestId: req.id, ip: clientIp(req), userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null };
}

export const SESSION_COOKIE = 'floodgate_session';

/** Pages and answers that carry tokens: never cached, never leaked through Referer. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('referrer-policy', 'no-referrer');
}
