import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES, type MessageType } from './model.js';
import { renderMessage, TemplateError, type Rendered } from './templates.js';

const PUBLIC = 'https://auth.example.test';
const AT = '2026-01-15T12:00:00.000Z';
const TOKEN = 'AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

const SAMPLES: Record<MessageType, { data: Record<string, unknown>; secret?: Record<string, string> }> = {
  verify_email: { data: { email: 'ada@example.test', expiresInMinutes: 30 }, secret: { link: `${PUBLIC}/verify?token=${TOKEN}` } },
  signup_existing: { data: { email: 'ada@example.test' } },
  password_reset: { data: { email: 'ada@example.test', expiresInMinutes: 20 }, secret: { resetLink: `${PUBLIC}/reset?token=${TOKEN}`, denyLink: `${PUBLIC}/reset/deny?token=${TOKEN}` } },
  password_changed: { data: { email: 'ada@example.test', at: AT, device: 'Firefox 128 on Linux', ip: '198.51.100.7' } },
  reset_prompt: { data: { requestedAt: AT, ip: '198.51.100.7' } },
  new_signin: { data: { device: 'Chrome 120 on macOS', ip: '198.51.100.7', at: AT }, secret: { revokeLink: `${PUBLIC}/sessions/revoke?token=${TOKEN}` } },
  second_factor_failed: { data: { device: 'Chrome 120 on macOS', ip: '198.51.100.7', at: AT } },
  mfa_changed: { data: { change: 'totp_enabled', at: AT } },
  email_changed: { data: { oldEmail: 'old@example.test', newEmail: 'new@example.test', at: AT } },
  broadcast: { data: { subject: 'Reset emails you did not ask for', text: 'Some of you received reset emails.\n\nYour accounts are safe.' } },
  digest: { data: { items: [{ subject: 'New sign-in', at: AT }, { subject: 'Password changed', at: AT }] } },
  operator_alert: { data: { title: 'Breaker open: password_reset', text: 'The reset breaker opened at 12:00.' } },
};

const render = (type: string, data: unknown, secret: Record<string, string> | null = null) => renderMessage(type, data, secret, { publicUrl: PUBLIC });
const urls = (r: Rendered) => [...`${r.text}\n${r.html}`.matchAll(/https?:\/\/[^\s"'<>]+/g)].map((m) => m[0].replace(/&amp;/g, '&'));

describe('templates', () => {
  it.each(MESSAGE_TYPES)('%s renders a subject, a plain-text part and an HTML part with links only to publicUrl', (type) => {
    const s = SAMPLES[type];
    const r = render(type, s.data, s.secret ?? null);
    expect(r.subject.length).toBeGreaterThan(5);
    expect(r.subject).not.toMatch(/[\r\n]/);
    expect(r.text.length).toBeGreaterThan(40);
    expect(r.html).toMatch(/^<!DOCTYPE html>/);
    // No images, no remote resources, no tracking.
    expect(r.html).not.toMatch(/<img|<script|<link|<iframe|style=|src=/i);
    for (const u of urls(r)) expect(u.startsWith(PUBLIC + '/')).toBe(true);
  });

  it('states the expiry and a "wasn\'t you" line where there is one', () => {
    const reset = render('password_reset', SAMPLES.password_reset.data, SAMPLES.password_reset.secret!);
    expect(reset.text).toMatch(/expires in 20 minutes/);
    expect(reset.text).toMatch(/wasn't you/);
    const verify = render('verify_email', SAMPLES.verify_email.data, SAMPLES.verify_email.secret!);
    expect(verify.text).toMatch(/expires in 30 minutes/);
    for (const t of ['password_changed', 'new_signin', 'mfa_changed', 'email_changed', 'signup_existing', 'reset_prompt'] as const) {
      expect(render(t, SAMPLES[t].data, SAMPLES[t].secret ?? null).text).toMatch(/wasn't you/);
    }
  });

  it('puts exactly one reset link and one deny link into a reset mail', () => {
    const r = render('password_reset', SAMPLES.password_reset.data, SAMPLES.password_reset.secret!);
    const unique = [...new Set(urls(r))];
    expect(unique).toEqual([`${PUBLIC}/reset?token=${TOKEN}`, `${PUBLIC}/reset/deny?token=${TOKEN}`]);
    expect(r.text).toMatch(/I didn't request this/);
  });

  it('refuses links that leave publicUrl or have the wrong shape', () => {
    expect(() => render('verify_email', SAMPLES.verify_email.data, { link: 'https://evil.example/verify?token=x' })).toThrow(/publicUrl/);
    expect(() => render('verify_email', SAMPLES.verify_email.data, { link: `${PUBLIC}.evil.example/verify` })).toThrow(TemplateError);
    expect(() => render('password_reset', SAMPLES.password_reset.data, { resetLink: `${PUBLIC}/other?token=x`, denyLink: `${PUBLIC}/reset/deny?token=x` })).toThrow(/resetLink/);
    expect(() => render('new_signin', SAMPLES.new_signin.data, { revokeLink: 'http://auth.example.test/x' })).toThrow(TemplateError);
  });

  it('escapes HTML and defangs foreign URLs in untrusted values', () => {
    const r = render('new_signin', { device: '<script>alert(1)</script> https://evil.example/login', ip: '1.2.3.4', at: AT });
    expect(r.html).not.toContain('<script>');
    expect(r.html).toContain('&lt;script&gt;');
    expect(r.text).toContain('https[:]//evil.example/login');
    for (const u of urls(r)) expect(u.startsWith(PUBLIC + '/')).toBe(true);
    const b = render('broadcast', { subject: 'Status\r\nBcc: everyone@example.test', text: `See ${PUBLIC}/status for details, not http://phish.example/.` });
    expect(b.subject).not.toMatch(/[\r\n]/);
    expect(b.text).toContain(`${PUBLIC}/status`);
    expect(b.text).toContain('http[:]//phish.example/');
  });

  it('fails clearly, without the value, on an unknown type or a missing or malformed field', () => {
    expect(() => render('pizza_party', {})).toThrow(/unknown message type "pizza_party"/);
    expect(() => render('password_reset', { email: 'a@example.test' }, SAMPLES.password_reset.secret!)).toThrow(/data\.expiresInMinutes/);
    expect(() => render('password_reset', SAMPLES.password_reset.data, null)).toThrow(/secret part is missing/);
    expect(() => render('password_reset', SAMPLES.password_reset.data, { resetLink: `${PUBLIC}/reset?token=${TOKEN}` })).toThrow(/secret\.denyLink/);
    expect(() => render('new_signin', { device: 'x', at: 'yesterday' })).toThrow(/data\.at is not an ISO/);
    expect(() => render('digest', { items: [] })).toThrow(/data\.items/);
    expect(() => render('verify_email', [])).toThrow(/data must be a JSON object/);
    const err = (() => { try { render('verify_email', SAMPLES.verify_email.data, { link: `https://evil.example/verify?token=${TOKEN}` }); return null; } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(TemplateError);
    expect(String(err)).not.toContain(TOKEN);
  });

  it('renders without the optional secret (inbox) and falls back to English for an unknown locale', () => {
    const r = renderMessage('new_signin', SAMPLES.new_signin.data, null, { publicUrl: PUBLIC, locale: 'xx' });
    expect(r.text).toContain(`${PUBLIC}/forgot`);
    expect(r.body).not.toContain('Automated security notice');
    expect(r.text).toContain('Automated security notice from auth.example.test');
  });
});
