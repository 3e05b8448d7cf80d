/**
 * The person's browser session on the hosted pages: the floodgate_session cookie, set exactly as
 * POST /api/v1/sessions sets it. Pages read the cookie only (a page never takes a bearer token).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { clearCookie, readCookie, writeCookie } from '../http/cookies.js';
import { DEVICE_COOKIE_OPTIONS, type ActiveSession } from '../modules/sessions/index.js';
import type { Services } from '../services.js';
import { csrfToken } from './csrf.js';

export interface PageUser extends ActiveSession {
  csrf: string;
}

const cache = new WeakMap<FastifyRequest, PageUser | null>();

/** The live session behind the cookie, with its CSRF token; null when signed out. */
export async function pageUser(s: Services, req: FastifyRequest): Promise<PageUser | null> {
  if (cache.has(req)) return cache.get(req)!;
  const c = readCookie(req, 'session');
  const a = c ? await s.sessions.authenticate(c) : null;
  const u = a && { ...a, csrf: csrfToken(s.box.key, a.session.id) };
  cache.set(req, u);
  return u;
}

export function setSessionCookie(s: Services, reply: FastifyReply, token: string): void {
  writeCookie(reply, 'session', token, { sameSite: 'lax', maxAge: Math.floor(s.config.sessionAbsoluteMs / 1000) });
}

/** The device cookie a sign-in returned (modules/sessions/devices.ts); kept on sign-out: it names the browser, not a session. */
export function setDeviceCookie(s: Services, reply: FastifyReply, value: string): void {
  writeCookie(reply, 'device', value, DEVICE_COOKIE_OPTIONS);
}

export function clearSessionCookie(reply: FastifyReply): void {
  clearCookie(reply, 'session');
}

/** POST-redirect-GET: 303 to a path on this site. */
export function seeOther(reply: FastifyReply, path: string): FastifyReply {
  return reply.code(303).header('location', path).send();
}
