import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../kernel/context.js';

export function ctxOf(req: FastifyRequest): RequestContext {
  const ua = req.headers['user-agent'];
  return { requestId: req.id, ip: req.ip ?? null, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null };
}

export const SESSION_COOKIE = 'floodgate_session';

/** Pages and answers that carry tokens: never cached, never leaked through Referer. */
export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store');
  reply.header('referrer-policy', 'no-referrer');
}
