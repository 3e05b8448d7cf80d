/**
 * Who is calling: a person (session token as Bearer or cookie) or an operator (Bearer).
 * Cookie-authenticated unsafe requests must come from our own origin (Origin or
 * Sec-Fetch-Site): a cookie alone never authorises a cross-site write.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../kernel/errors.js';
import type { Operator } from '../modules/operators/index.js';
import type { ActiveSession } from '../modules/sessions/index.js';
import type { Services } from '../services.js';
import { ctxOf } from './context.js';
import { readCookie } from './cookies.js';

export interface Principal extends ActiveSession {
  via: 'bearer' | 'cookie';
}

const principals = new WeakMap<FastifyRequest, Principal | null>();

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer[ ]+([^\s]{1,512})$/i.exec(h.trim());
  return m ? m[1]! : null;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether an unsafe cookie-authenticated request comes from our own pages. */
export function sameOrigin(req: FastifyRequest, publicUrl: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return false;
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== 'null') return origin === publicUrl;
  // A same-origin form post from a page with Referrer-Policy: no-referrer (ours) carries
  // `Origin: null`; Sec-Fetch-Site, which no page can set, still tells it is ours.
  if (origin === 'null') return site === 'same-origin';
  return true; // not a browser-initiated cross-site request (no Origin, no Sec-Fetch-Site)
}

export async function authenticateUser(s: Services, req: FastifyRequest): Promise<Principal | null> {
  if (principals.has(req)) return principals.get(req)!;
  let p: Principal | null = null;
  const b = bearer(req);
  if (b) {
    const a = await s.sessions.authenticate(b);
    p = a && { ...a, via: 'bearer' };
  } else {
    const c = readCookie(req, 'session');
    if (c) {
      const a = await s.sessions.authenticate(c);
      p = a && { ...a, via: 'cookie' };
    }
  }
  principals.set(req, p);
  return p;
}

export async function requireUser(s: Services, req: FastifyRequest): Promise<Principal> {
  const p = await authenticateUser(s, req);
  if (!p) throw new AppError('unauthenticated', 'Sign in first: send the session token as a Bearer token or the session cookie.');
  if (p.via === 'cookie' && !SAFE.has(req.method) && !sameOrigin(req, s.config.publicUrl)) {
    throw new AppError('csrf_failed', 'Cookie-authenticated requests must come from this site.');
  }
  return p;
}

/**
 * An operator bearer token, or 401. A presented token that matches no operator counts against the
 * caller's source and network; past the limit the answer is 429 with Retry-After (operators module).
 */
export async function requireOperator(s: Services, req: FastifyRequest): Promise<Operator> {
  const b = bearer(req);
  const op = b ? await s.operators.authenticate(b, ctxOf(req)) : null;
  if (!op) throw new AppError('unauthenticated', 'Operator API: send FLOODGATE_ADMIN_TOKEN or an operator token as a Bearer token.');
  return op;
}
