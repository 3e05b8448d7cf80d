/**
 * The service's cookies and their names. On an https public URL every cookie carries the
 * `__Host-` prefix: a browser keeps such a cookie only when it is Secure, has Path=/ and no
 * Domain, so neither a sibling subdomain nor a plain-http page on the same host can plant or
 * overwrite it (session fixation, login CSRF through an injected session cookie). On http (local
 * development) the prefix cannot be used, and the plain names are kept.
 *
 * The app records once whether it is https (`decorateCookies` in buildApp), so every reader and
 * writer asks for a cookie by its kind and gets the one right name.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export type CookieKind = 'session' | 'device' | 'console';

const BASE: Record<CookieKind, string> = { session: 'floodgate_session', device: 'floodgate_device', console: 'floodgate_console' };

const HTTPS = 'floodgateCookiesSecure';

export function cookieName(kind: CookieKind, https: boolean): string {
  return https ? `__Host-${BASE[kind]}` : BASE[kind];
}

/** Called once by buildApp: whether cookies are Secure and `__Host-` named. */
export function decorateCookies(app: FastifyInstance<any, any, any, any, any>, https: boolean): void {
  app.decorate(HTTPS, https);
}

function httpsOf(server: FastifyInstance<any, any, any, any, any>): boolean {
  return (server as unknown as Record<string, unknown>)[HTTPS] === true;
}

export function readCookie(req: FastifyRequest, kind: CookieKind): string | undefined {
  const v = req.cookies?.[cookieName(kind, httpsOf(req.server))];
  return typeof v === 'string' && v ? v : undefined;
}

export interface CookieOptions {
  /** Seconds; omitted: a browser-session cookie. */
  maxAge?: number;
  sameSite: 'lax' | 'strict';
  /** On http only: a narrower path (the console's). On https `__Host-` requires Path=/. */
  httpPath?: string;
}

export function writeCookie(reply: FastifyReply, kind: CookieKind, value: string, o: CookieOptions): void {
  const https = httpsOf(reply.server);
  reply.setCookie(cookieName(kind, https), value, {
    httpOnly: true, secure: https, sameSite: o.sameSite, path: https ? '/' : (o.httpPath ?? '/'),
    ...(o.maxAge !== undefined ? { maxAge: o.maxAge } : {}),
  });
}

export function clearCookie(reply: FastifyReply, kind: CookieKind, o: { httpPath?: string } = {}): void {
  const https = httpsOf(reply.server);
  // __Host- cookies are only cleared by a Set-Cookie that is itself Secure with Path=/.
  reply.clearCookie(cookieName(kind, https), { path: https ? '/' : (o.httpPath ?? '/'), secure: https, httpOnly: true });
}
