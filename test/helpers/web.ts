/** Helpers for the hosted-page suites: form posts through inject(), cookies and CSRF tokens from answers. */
import type { App } from '../../src/http/app.js';

export const ORIGIN = 'http://floodgate.test';
export const SAME_SITE = { origin: ORIGIN, 'sec-fetch-site': 'same-origin' };

export interface PageAnswer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
  cookies: Record<string, { value: string; attrs: string }>;
}

function cookiesOf(setCookie: unknown): PageAnswer['cookies'] {
  const out: PageAnswer['cookies'] = {};
  for (const c of ([] as string[]).concat((setCookie as string | string[] | undefined) ?? [])) {
    const [pair, ...attrs] = c.split(';');
    const i = pair!.indexOf('=');
    out[pair!.slice(0, i).trim()] = { value: decodeURIComponent(pair!.slice(i + 1).trim()), attrs: attrs.map((a) => a.trim()).join('; ') };
  }
  return out;
}

export async function page(app: App, method: 'GET' | 'POST', url: string, fields?: Record<string, string>, headers: Record<string, string> = {}, ip = '198.51.100.7'): Promise<PageAnswer> {
  const res = await app.inject({
    method, url, remoteAddress: ip,
    headers: { ...(fields ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
    ...(fields ? { payload: new URLSearchParams(fields).toString() } : {}),
  });
  return { status: res.statusCode, headers: res.headers, text: res.body, cookies: cookiesOf(res.headers['set-cookie']) };
}

/** The value of the first hidden `csrf` field in a page. */
export function csrfIn(html: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(html);
  if (!m) throw new Error('no csrf field in the page');
  return m[1]!;
}

export const cookie = (name: string, value: string) => ({ cookie: `${name}=${encodeURIComponent(value)}` });

/** Pages carry no inline script or style and link the stylesheet. */
export function expectCleanPage(text: string): void {
  // Inside tags only: escaped text may well read "onerror=" (that is the point of escaping).
  if (/<script(?![^>]*\ssrc="\/assets\/)|<style|<[a-z][^>]*\s(style|on[a-z]+)=/i.test(text)) throw new Error('inline script, style or handler in the page');
  if (!text.includes('<link rel="stylesheet" href="/assets/app.css">')) throw new Error('no stylesheet link');
}

let ipSeq = 0;
/** A fresh client address (TEST-NET-2) so per-source limits of one test do not reach another. */
export function nextIp(): string {
  ipSeq++;
  return `198.51.${100 + ((ipSeq >> 8) & 3)}.${ipSeq & 255}`;
}
