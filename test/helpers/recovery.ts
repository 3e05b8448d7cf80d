/** Helpers for the recovery suites: requests from chosen client addresses, and reading reset mail from the outbox. */
import type { App } from '../../src/http/app.js';
import type { Harness } from './harness.js';

let ipSeq = 0;
/** A fresh client address (TEST-NET-3), so per-source limits of one test do not leak into another. */
export function freshIp(): string {
  ipSeq++;
  return `203.0.${113 + ((ipSeq >> 8) & 7)}.${ipSeq & 255}`;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
  json: any;
}

/** A request through inject() from `ip` (the socket address: no proxy is trusted in the harness). */
export async function from(app: App, ip: string, method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const isForm = typeof body === 'string';
  const res = await app.inject({
    method: method as 'POST',
    url,
    remoteAddress: ip,
    headers: { ...(body !== undefined ? { 'content-type': isForm ? 'application/x-www-form-urlencoded' : 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { payload: isForm ? (body as string) : JSON.stringify(body) } : {}),
  });
  let json: any = null;
  try { json = res.json(); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, text: res.body, json };
}

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Ask for a reset as an anonymous client and let the intake worker decide it. */
export async function requestReset(h: Harness, email: string, ip = freshIp(), headers: Record<string, string> = {}): Promise<Answer> {
  const r = await from(h.app, ip, 'POST', '/api/v1/password-resets', { email }, headers);
  await h.s.resetIntake.processOnce();
  return r;
}

export async function resetRows(h: Harness, email: string) {
  return h.s.storage.db.selectFrom('outbox').selectAll().where('type', '=', 'password_reset').where('recipient', '=', email).orderBy('id').execute();
}

export interface ResetMail {
  id: string;
  resetLink: string;
  denyLink: string;
  token: string;
  denyToken: string;
}

/** The reset mails queued for `email`, oldest first, with their sealed links opened. */
export async function resetMails(h: Harness, email: string): Promise<ResetMail[]> {
  return (await resetRows(h, email)).map((row) => {
    const secret = h.s.outbox.openSecret(row);
    if (!secret?.resetLink || !secret.denyLink) throw new Error('reset mail without links');
    return {
      id: row.id, resetLink: secret.resetLink, denyLink: secret.denyLink,
      token: new URL(secret.resetLink).searchParams.get('token')!, denyToken: new URL(secret.denyLink).searchParams.get('token')!,
    };
  });
}

export async function lastResetMail(h: Harness, email: string): Promise<ResetMail> {
  const all = await resetMails(h, email);
  if (!all.length) throw new Error(`no reset mail for ${email}`);
  return all[all.length - 1]!;
}

/** Headers of an answer without the ones that differ per request by design. */
export function stableHeaders(hd: Answer['headers']): Record<string, unknown> {
  const { date: _d, 'x-request-id': _r, ...rest } = hd;
  return rest;
}
