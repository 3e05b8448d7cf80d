import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARS, configProblems as problems, configReferenceMarkdown, loadConfig } from './schema.js';

describe('config', () => {
  it('has safe embedded defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 8080, host: '127.0.0.1', publicUrl: 'http://localhost:8080', database: { kind: 'sqlite', file: './data/floodgate.db' }, redisUrl: null, smtpUrl: null, devMailbox: true, trustProxy: [] });
    expect(Object.isFrozen(c)).toBe(true);
    expect(() => { (c as any).port = 1; }).toThrow();
  });

  it('shows the dev mailbox only on a loopback public URL unless asked, and never on https (issue 13.5)', () => {
    expect(loadConfig({}).devMailbox).toBe(true); // http://localhost:8080
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://127.0.0.1:9000' }).devMailbox).toBe(true);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://[::1]:9000' }).devMailbox).toBe(true);
    // Before: any public URL without SMTP showed everyone's reset links to anyone who could reach it.
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://auth.example.com' }).devMailbox).toBe(false);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'https://auth.example.com' }).devMailbox).toBe(false);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://127.0.0.1.example.com' }).devMailbox).toBe(false);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://localhost:8080', NODE_ENV: 'production' }).devMailbox).toBe(false);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://localhost:8080', FLOODGATE_SMTP_URL: 'smtp://127.0.0.1:25' }).devMailbox).toBe(false);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'http://staging.example.com', FLOODGATE_DEV_MAILBOX: 'true' }).devMailbox).toBe(true);
    expect(problems({ FLOODGATE_PUBLIC_URL: 'https://auth.example.com', FLOODGATE_DEV_MAILBOX: 'true' })[0]).toMatch(/^FLOODGATE_DEV_MAILBOX: cannot be true with an https/);
  });

  it('puts metrics on a listener of their own only when asked', () => {
    expect(loadConfig({}).metrics).toBeNull();
    expect(loadConfig({ FLOODGATE_METRICS_PORT: '9464' }).metrics).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(loadConfig({ FLOODGATE_METRICS_PORT: '9464', FLOODGATE_METRICS_HOST: '10.0.0.5' }).metrics).toEqual({ port: 9464, host: '10.0.0.5' });
    expect(problems({ FLOODGATE_METRICS_PORT: '8080' })[0]).toMatch(/^FLOODGATE_METRICS_PORT: must differ/);
    expect(problems({ FLOODGATE_METRICS_PORT: 'x' })[0]).toMatch(/^FLOODGATE_METRICS_PORT/);
    expect(problems({ FLOODGATE_METRICS_HOST: 'metrics.internal' })[0]).toMatch(/^FLOODGATE_METRICS_HOST/);
  });

  it('names every bad variable at once', () => {
    const p = problems({ FLOODGATE_PORT: '99999', FLOODGATE_PUBLIC_URL: 'not a url', FLOODGATE_DATABASE_URL: 'mysql://x', FLOODGATE_TRUST_PROXY: '10.0.0.0/33', FLOODGATE_ADMIN_TOKEN: 'short', FLOODGATE_SECRET_KEY: 'nope', FLOODGATE_SESSION_IDLE_TIMEOUT: '5 minutes', FLOODGATE_DKIM_DOMAIN: 'example.test' });
    const named = p.map((x) => x.split(':')[0]);
    expect(named).toEqual(expect.arrayContaining(['FLOODGATE_PORT', 'FLOODGATE_PUBLIC_URL', 'FLOODGATE_DATABASE_URL', 'FLOODGATE_TRUST_PROXY', 'FLOODGATE_ADMIN_TOKEN', 'FLOODGATE_SECRET_KEY', 'FLOODGATE_SESSION_IDLE_TIMEOUT', 'FLOODGATE_DKIM_DOMAIN']));
    // Secrets are never echoed back in the message.
    expect(p.join('\n')).not.toContain('short');
  });

  it('accepts only an origin as the public URL', () => {
    expect(problems({ FLOODGATE_PUBLIC_URL: 'https://auth.example.com/path' })[0]).toMatch(/^FLOODGATE_PUBLIC_URL: must be an origin only/);
    expect(problems({ FLOODGATE_PUBLIC_URL: 'javascript:alert(1)' })[0]).toMatch(/^FLOODGATE_PUBLIC_URL/);
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'https://Auth.Example.com:8443/' }).publicUrl).toBe('https://auth.example.com:8443');
  });

  it('parses proxies, durations, keys and databases', () => {
    const c = loadConfig({ FLOODGATE_TRUST_PROXY: 'loopback, 10.0.0.0/8,::1', FLOODGATE_SESSION_IDLE_TIMEOUT: '30m', FLOODGATE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'), FLOODGATE_DATABASE_URL: 'postgres://u@127.0.0.1:5432/db' });
    expect(c.trustProxy).toEqual(['loopback', '10.0.0.0/8', '::1']);
    expect(c.sessionIdleMs).toBe(30 * 60_000);
    expect(c.database).toEqual({ kind: 'postgres', url: 'postgres://u@127.0.0.1:5432/db' });
    expect(problems({ FLOODGATE_SECRET_KEY: 'ab'.repeat(32) })).toEqual([]);
  });

  it('bounds the password hashes computed at once, by default to the cores available', () => {
    expect(loadConfig({}).hashConcurrency).toBe(availableParallelism());
    expect(loadConfig({ FLOODGATE_HASH_CONCURRENCY: '3' }).hashConcurrency).toBe(3);
    for (const bad of ['0', '257', '1.5', 'two', '-1']) expect(problems({ FLOODGATE_HASH_CONCURRENCY: bad })[0]).toMatch(/^FLOODGATE_HASH_CONCURRENCY: must be a whole number from 1 to 256/);
  });

  it('is documented in README.md exactly as the schema says', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(configReferenceMarkdown());
    for (const v of CONFIG_VARS) expect(readme).toContain(v.name);
  });
});
