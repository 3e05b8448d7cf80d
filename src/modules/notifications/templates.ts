/**
 * Typed message templates: one per MessageType, rendered to subject, plain text and HTML.
 * Invariants (DESIGN: "Mail users can trust"):
 * - every message has a plain-text part, and the HTML part says the same thing, escaped;
 * - no images, no tracking pixels, no rewritten links: the only links are our own, and every
 *   link starts with publicUrl + '/' — asserted on the rendered output, so a template bug
 *   throws instead of mailing a foreign link;
 * - values that come from requests or operators (device names, addresses, broadcast text) are
 *   cleaned: control characters stripped, length capped, and any URL not on publicUrl defanged
 *   ("https[:]//…") so it can be neither clicked nor mistaken for ours;
 * - a message that carries a link says when it expires, and every security notice says what to
 *   do if it wasn't you;
 * - errors name the field, never its value (secret links must not reach logs or last_error).
 * A template is a list of blocks; one renderer turns blocks into text and HTML, so the two
 * parts cannot drift apart. Languages: add a catalogue to CATALOGUES under its locale key.
 */
import { MESSAGE_TYPES, type MessageType } from './model.js';

export interface Rendered {
  subject: string;
  /** The plain-text part (always present). */
  text: string;
  html: string;
  /** The text without the mail footer: the body of an in-app notice or a webhook. */
  body: string;
}

/** Data contracts: `data` is non-secret JSON stored in the row; `secret` is sealed at rest. */
export interface TemplateData {
  verify_email: { email: string; expiresInMinutes: number };
  signup_existing: { email: string };
  password_reset: { email: string; expiresInMinutes: number };
  password_changed: { email: string; at: string; device?: string; ip?: string };
  reset_prompt: { requestedAt: string; ip?: string };
  new_signin: { device: string; ip?: string; at: string };
  second_factor_failed: { device: string; ip?: string; at: string };
  mfa_changed: { change: string; at: string };
  email_changed: { oldEmail: string; newEmail: string; at: string };
  broadcast: { subject: string; text: string };
  digest: { items: { subject: string; at: string }[] };
  operator_alert: { title: string; text: string };
}

export interface TemplateSecrets {
  verify_email: { link: string };
  signup_existing: null;
  password_reset: { resetLink: string; denyLink: string };
  password_changed: null;
  reset_prompt: null;
  new_signin: { revokeLink?: string } | null;
  second_factor_failed: null;
  mfa_changed: null;
  email_changed: null;
  broadcast: null;
  digest: null;
  operator_alert: null;
}

export const LOCALES = ['en'] as const;
export type Locale = (typeof LOCALES)[number];

/** A template that cannot be rendered from this row: the row fails (permanently) with this message. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

type Block =
  | { kind: 'p'; text: string }
  | { kind: 'link'; label: string; url: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'small'; text: string };

interface Draft {
  subject: string;
  blocks: Block[];
}

interface Ctx {
  publicUrl: string;
  /** host[:port] of publicUrl: names the service without being a link. */
  host: string;
  /** Clean an untrusted value (see the invariants). */
  clean(v: string, max?: number): string;
  time(iso: string): string;
  link(label: string, url: string): Block;
}

type Catalogue = { [T in MessageType]: (d: TemplateData[T], s: TemplateSecrets[T], c: Ctx) => Draft };

// ---- English ---------------------------------------------------------------------------------

const p = (text: string): Block => ({ kind: 'p', text });
const small = (text: string): Block => ({ kind: 'small', text });
const MFA_CHANGES: Record<string, string> = {
  totp_enabled: 'An authenticator app was turned on for two-step sign-in.',
  totp_disabled: 'The authenticator app was turned off for two-step sign-in.',
  passkey_added: 'A passkey was added to your account.',
  passkey_removed: 'A passkey was removed from your account.',
  recovery_codes_regenerated: 'New recovery codes were generated; the old ones no longer work.',
  recovery_code_used: 'A recovery code was used to sign in.',
  mfa_disabled: 'Two-step sign-in was turned off.',
};

const en: Catalogue = {
  verify_email: (d, s, c) => ({
    subject: 'Confirm your email address',
    blocks: [
      p(`Please confirm that ${c.clean(d.email)} is your email address by opening this link:`),
      c.link('Confirm my email address', s.link),
      p(`This link expires in ${d.expiresInMinutes} minutes and works once.`),
      small(`If you did not sign up at ${c.host}, ignore this message: without confirmation nothing happens.`),
    ],
  }),
  signup_existing: (d, _s, c) => ({
    subject: 'Someone tried to sign up with your address',
    blocks: [
      p(`Someone tried to create an account at ${c.host} with ${c.clean(d.email)}, which already has an account. Nothing was changed.`),
      p('If it was you and you forgot your password, you can reset it here:'),
      c.link('Reset my password', `${c.publicUrl}/forgot`),
      small("If this wasn't you, you can ignore this message: your account and password are unchanged."),
    ],
  }),
  password_reset: (d, s, c) => ({
    subject: 'Reset your password',
    blocks: [
      p(`Someone asked to reset the password of the account ${c.clean(d.email)} at ${c.host}. If it was you, choose a new password here:`),
      c.link('Choose a new password', s.resetLink),
      p(`This link expires in ${d.expiresInMinutes} minutes and works once. Opening it changes nothing until you submit a new password.`),
      p("If this wasn't you, your password is unchanged. Tell us, and this link stops working at once:"),
      c.link("I didn't request this", s.denyLink),
    ],
  }),
  password_changed: (d, _s, c) => ({
    subject: 'Your password was changed',
    blocks: [
      p(`The password of your account ${c.clean(d.email)} at ${c.host} was changed on ${c.time(d.at)}${d.device ? ` from ${c.clean(d.device)}` : ''}${d.ip ? ` (address ${c.clean(d.ip, 64)})` : ''}. Your other sessions were signed out.`),
      p("If this wasn't you, reset your password now:"),
      c.link('Reset my password', `${c.publicUrl}/forgot`),
    ],
  }),
  reset_prompt: (d, _s, c) => ({
    subject: 'Someone asked to reset your password. Was it you?',
    blocks: [
      p(`Someone asked to reset your password on ${c.time(d.requestedAt)}${d.ip ? ` from address ${c.clean(d.ip, 64)}` : ''}. Was it you?`),
      small("If it wasn't you, you don't need to do anything: your password stays the same, and nobody can change it without the link we sent to your email address."),
    ],
  }),
  new_signin: (d, s, c) => ({
    subject: 'New sign-in to your account',
    blocks: [
      p(`Your account was signed in to on ${c.time(d.at)} from ${c.clean(d.device)}${d.ip ? ` (address ${c.clean(d.ip, 64)})` : ''}.`),
      ...(s?.revokeLink
        ? [p("If this wasn't you, sign that device out and change your password:"), c.link('Sign this device out', s.revokeLink)]
        : [p("If this wasn't you, change your password now:"), c.link('Reset my password', `${c.publicUrl}/forgot`)]),
    ],
  }),
  second_factor_failed: (d, _s, c) => ({
    subject: 'Someone used your password',
    blocks: [
      p(`Your password was entered correctly on ${c.time(d.at)} from ${c.clean(d.device)}${d.ip ? ` (address ${c.clean(d.ip, 64)})` : ''}, but the two-step code was not, so nobody was signed in.`),
      p("If it wasn't you, someone else knows your password: change it now. Your two-step sign-in kept them out, and a new password keeps it that way:"),
      c.link('Reset my password', `${c.publicUrl}/forgot`),
      small('If it was you and you mistyped the code, you can ignore this message.'),
    ],
  }),
  mfa_changed: (d, _s, c) => ({
    subject: 'Your two-step sign-in settings changed',
    blocks: [
      p(`${MFA_CHANGES[d.change] ?? `Your two-step sign-in settings changed (${c.clean(d.change, 60)}).`} When: ${c.time(d.at)}.`),
      p("If this wasn't you, reset your password now; it signs every device out:"),
      c.link('Reset my password', `${c.publicUrl}/forgot`),
    ],
  }),
  email_changed: (d, _s, c) => ({
    subject: 'The email address of your account changed',
    blocks: [
      p(`The email address of your account at ${c.host} changed from ${c.clean(d.oldEmail)} to ${c.clean(d.newEmail)} on ${c.time(d.at)}.`),
      p("If this wasn't you, reset your password now and contact the operators of this service:"),
      c.link('Reset my password', `${c.publicUrl}/forgot`),
    ],
  }),
  broadcast: (d, _s, c) => ({
    subject: c.clean(d.subject, 200),
    blocks: [...c.clean(d.text, 10_000).split(/\n{2,}/).map((t) => p(t)), small(`This notice was sent to every affected account by the operators of ${c.host}. We never ask for your password by email.`)],
  }),
  digest: (d, _s, c) => ({
    subject: `Your security notices (${d.items.length})`,
    blocks: [
      p(`Here is a summary of ${d.items.length} security notice${d.items.length === 1 ? '' : 's'} for your account:`),
      { kind: 'list', items: d.items.map((i) => `${c.time(i.at)}: ${c.clean(i.subject, 200)}`) },
      p("If any of these wasn't you, reset your password now:"),
      c.link('Reset my password', `${c.publicUrl}/forgot`),
    ],
  }),
  operator_alert: (d, _s, c) => ({
    subject: `[Floodgate] ${c.clean(d.title, 200)}`,
    blocks: c.clean(d.text, 10_000).split(/\n{2,}/).map((t) => p(t)),
  }),
};

const CATALOGUES: Record<Locale, Catalogue> = { en };

// ---- Data contracts, checked at render time (rows are JSON from the database) ----------------

class Reader {
  constructor(
    private readonly type: string,
    private readonly where: 'data' | 'secret',
    private readonly o: Record<string, unknown>,
  ) {}
  private fail(field: string, what: string): never {
    throw new TemplateError(`${this.type}: ${this.where}.${field} ${what}`);
  }
  str(f: string): string {
    const v = this.o[f];
    if (typeof v !== 'string' || v.trim() === '') this.fail(f, 'is missing or not a non-empty string');
    return v;
  }
  optStr(f: string): string | undefined {
    const v = this.o[f];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') this.fail(f, 'must be a string');
    return v;
  }
  num(f: string): number {
    const v = this.o[f];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(f, 'is missing or not a positive number');
    return v;
  }
  iso(f: string): string {
    const v = this.str(f);
    if (Number.isNaN(Date.parse(v))) this.fail(f, 'is not an ISO date-time');
    return v;
  }
  items(f: string): { subject: string; at: string }[] {
    const v = this.o[f];
    if (!Array.isArray(v) || v.length === 0 || v.length > 500) this.fail(f, 'must be a non-empty array (at most 500 items)');
    return v.map((it, i) => {
      if (!it || typeof it !== 'object') this.fail(`${f}[${i}]`, 'must be an object');
      const r = new Reader(this.type, this.where, it as Record<string, unknown>);
      return { subject: r.str('subject'), at: r.iso('at') };
    });
  }
}

type Parsers = { [T in MessageType]: (d: Reader, s: Reader | null) => [TemplateData[T], TemplateSecrets[T]] };

const need = (type: string, s: Reader | null): Reader => {
  if (!s) throw new TemplateError(`${type}: the secret part is missing (wiped, never sealed, or not openable with this FLOODGATE_SECRET_KEY)`);
  return s;
};

const PARSERS: Parsers = {
  verify_email: (d, s) => [{ email: d.str('email'), expiresInMinutes: d.num('expiresInMinutes') }, { link: need('verify_email', s).str('link') }],
  signup_existing: (d) => [{ email: d.str('email') }, null],
  password_reset: (d, s) => {
    const sec = need('password_reset', s);
    return [{ email: d.str('email'), expiresInMinutes: d.num('expiresInMinutes') }, { resetLink: sec.str('resetLink'), denyLink: sec.str('denyLink') }];
  },
  password_changed: (d) => [{ email: d.str('email'), at: d.iso('at'), device: d.optStr('device'), ip: d.optStr('ip') }, null],
  reset_prompt: (d) => [{ requestedAt: d.iso('requestedAt'), ip: d.optStr('ip') }, null],
  new_signin: (d, s) => [{ device: d.str('device'), ip: d.optStr('ip'), at: d.iso('at') }, s ? { revokeLink: s.optStr('revokeLink') } : null],
  second_factor_failed: (d) => [{ device: d.str('device'), ip: d.optStr('ip'), at: d.iso('at') }, null],
  mfa_changed: (d) => [{ change: d.str('change'), at: d.iso('at') }, null],
  email_changed: (d) => [{ oldEmail: d.str('oldEmail'), newEmail: d.str('newEmail'), at: d.iso('at') }, null],
  broadcast: (d) => [{ subject: d.str('subject'), text: d.str('text') }, null],
  digest: (d) => [{ items: d.items('items') }, null],
  operator_alert: (d) => [{ title: d.str('title'), text: d.str('text') }, null],
};

// ---- Rendering --------------------------------------------------------------------------------

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ESC[ch]!);
}

const URL_RE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]*/gi;

export interface RenderOptions {
  publicUrl: string;
  /** A key of CATALOGUES; unknown locales fall back to English. */
  locale?: string;
}

/**
 * Render a row's template. Throws TemplateError for an unknown type, a missing or malformed
 * field, or a link that would leave publicUrl.
 */
export function renderMessage(type: string, data: unknown, secret: Record<string, string> | null, opts: RenderOptions): Rendered {
  if (!(MESSAGE_TYPES as readonly string[]).includes(type)) throw new TemplateError(`unknown message type "${String(type).slice(0, 40)}"`);
  const t = type as MessageType;
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new TemplateError(`${t}: data must be a JSON object`);
  const base = opts.publicUrl.replace(/\/+$/, '');
  const prefix = base + '/';
  const d = new Reader(t, 'data', data as Record<string, unknown>);
  const s = secret ? new Reader(t, 'secret', secret) : null;
  const [td, ts] = PARSERS[t](d, s);
  if (t === 'password_reset') {
    const sec = ts as TemplateSecrets['password_reset'];
    // Exactly one reset link and one deny link, both on our origin (DESIGN: public contract).
    if (!sec.resetLink.startsWith(`${base}/reset?token=`)) throw new TemplateError('password_reset: secret.resetLink is not a /reset?token= link on publicUrl');
    if (!sec.denyLink.startsWith(`${base}/reset/deny?token=`)) throw new TemplateError('password_reset: secret.denyLink is not a /reset/deny?token= link on publicUrl');
  }
  const catalogue = CATALOGUES[(opts.locale ?? 'en') as Locale] ?? CATALOGUES.en;
  const ctx: Ctx = {
    publicUrl: base,
    host: new URL(base).host,
    clean: (v, max = 320) => cleanUntrusted(v, max, prefix),
    time: (iso) => new Date(iso).toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    link: (label, url) => {
      if (!url.startsWith(prefix)) throw new TemplateError(`${t}: a link does not start with publicUrl + '/'`);
      if (/[\s"'<>]/.test(url)) throw new TemplateError(`${t}: a link contains whitespace, quotes or angle brackets`);
      return { kind: 'link', label, url };
    },
  };
  const draft = (catalogue[t] as (d: unknown, s: unknown, c: Ctx) => Draft)(td, ts, ctx);
  const rendered = toParts(draft, ctx.host, opts.locale ?? 'en');
  assertLinksOnOrigin(t, rendered, prefix);
  return rendered;
}

/** Strip control characters, cap the length, and defang every URL that is not on our origin. */
function cleanUntrusted(v: string, max: number, prefix: string): string {
  let s = String(v)
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '')
    .trim();
  if (s.length > max) s = s.slice(0, max - 1) + '…';
  return s.replace(URL_RE, (m) => (m.startsWith(prefix) ? m : m.replace('://', '[:]//')));
}

function toParts(draft: Draft, host: string, lang: string): Rendered {
  const subject = draft.subject.replace(/[\r\n]+/g, ' ').trim().slice(0, 200);
  const footer = `Automated security notice from ${host}. We never ask for your password by email.`;
  const text: string[] = [];
  const html: string[] = [];
  const para = (s: string) => escapeHtml(s).replace(/\n/g, '<br>\n');
  for (const b of draft.blocks) {
    switch (b.kind) {
      case 'p':
        text.push(b.text);
        html.push(`<p>${para(b.text)}</p>`);
        break;
      case 'small':
        text.push(b.text);
        html.push(`<p><small>${para(b.text)}</small></p>`);
        break;
      case 'list':
        text.push(b.items.map((i) => `- ${i}`).join('\n'));
        html.push(`<ul>\n${b.items.map((i) => `<li>${para(i)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'link':
        // The address is shown in full, so the reader can see where it goes before opening it.
        text.push(`${b.label}:\n${b.url}`);
        html.push(`<p><a href="${escapeHtml(b.url)}">${escapeHtml(b.label)}</a><br>\n<small>${escapeHtml(b.url)}</small></p>`);
        break;
    }
  }
  const body = text.join('\n\n');
  text.push(`--\n${footer}`);
  html.push(`<hr>\n<p><small>${escapeHtml(footer)}</small></p>`);
  return {
    subject,
    body,
    text: text.join('\n\n') + '\n',
    html: `<!DOCTYPE html>\n<html lang="${escapeHtml(lang)}">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width">\n<title>${escapeHtml(subject)}</title>\n</head>\n<body>\n${html.join('\n')}\n</body>\n</html>\n`,
  };
}

/** The last line of defence: every URL in either part, and every href, is on our origin. */
function assertLinksOnOrigin(type: string, r: Rendered, prefix: string): void {
  const hrefs = [...r.html.matchAll(/\shref\s*=\s*"([^"]*)"/gi)].map((m) => m[1]!.replace(/&amp;/g, '&'));
  const urls = [...(r.text.match(URL_RE) ?? []), ...(r.html.match(URL_RE) ?? []), ...(r.subject.match(URL_RE) ?? []), ...hrefs];
  for (const u of urls) if (!u.replace(/&amp;/g, '&').startsWith(prefix)) throw new TemplateError(`${type}: rendered output contains a link outside publicUrl`);
}
