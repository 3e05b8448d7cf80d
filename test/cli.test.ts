import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from './helpers/cli.js';
import { loadConfig } from '../src/config/schema.js';
import { CLI_CONTEXT } from '../src/kernel/context.js';
import { createServices } from '../src/main.js';
import pino from 'pino';
import { freePort } from './helpers/net.js';


function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOODGATE_')));
  return { ...env, FLOODGATE_LOG_LEVEL: 'info', ...extra };
}

function run(args: string[], env: Record<string, string>, input?: string) {
  return runCli(args, cleanEnv(env), input);
}


// Each case spawns the CLI several times through tsx (seconds each on a loaded 2-core machine).
describe('floodgate CLI', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fg-cli-data-'));
  const env = { FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir };

  it('stops on a bad configuration with a message naming the variable, without a stack trace', async () => {
    const r = await run(['serve'], { FLOODGATE_PUBLIC_URL: 'not a url', FLOODGATE_PORT: 'eighty' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/FLOODGATE_PUBLIC_URL: is not a URL/);
    expect(r.stderr).toMatch(/FLOODGATE_PORT: must be a port number/);
    expect(r.stderr).not.toMatch(/\s+at .+\.(js|ts):\d+/);
  });

  it('prints help for every command', async () => {
    const commands = [['--help'], ['serve', '--help'], ['migrate', '--help'], ['users', 'import', '--help'], ['operators', 'create', '--help'], ['config', '--help']];
    const results = await Promise.all(commands.map((args) => run(args, {})));
    commands.forEach((args, i) => {
      expect(results[i]!.status, args.join(' ')).toBe(0);
      expect(results[i]!.stdout).toMatch(/Usage: floodgate/);
    });
  });

  it('signs every account out everywhere with sessions revoke-all, audited with its reason (ASVS 5.0 7.4.5)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'fg-cli-revoke-'));
    const e = { FLOODGATE_DATABASE_URL: `sqlite:${join(d, 'fg.db')}`, FLOODGATE_DATA_DIR: d };
    const s = await createServices(loadConfig(e), { logger: pino({ level: 'silent' }) });
    try {
      const created = await Promise.all(['r1@example.test', 'r2@example.test'].map((email) => s.accounts.createByOperator({ email, password: 'revoke all passphrase 9', emailVerified: true }, CLI_CONTEXT, 'test')));
      const tokens = await Promise.all(created.map((u) => s.storage.db.transaction().execute((trx) => s.sessions.create(trx, u.id, CLI_CONTEXT, 'password'))));
      for (const t of tokens) expect(await s.sessions.authenticate(t.token)).not.toBeNull();
      expect((await run(['sessions', 'revoke-all'], e)).status).not.toBe(0); // the reason is required
      const r = await run(['sessions', 'revoke-all', '--reason', 'credential leak, incident 42'], e);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/revoked 2 live sessions/);
      for (const t of tokens) expect(await s.sessions.authenticate(t.token)).toBeNull();
      expect((await s.audit.list()).find((a) => a.action === 'sessions.revoke_all')).toMatchObject({ target: '*', reason: 'credential leak, incident 42' });
    } finally {
      await s.storage.close();
    }
  });

  it('migrates, imports users from a file and creates operator tokens that the API accepts', async () => {
    expect((await run(['migrate'], env)).stdout).toMatch(/applied: 0001-foundation|up to date/);
    expect((await run(['migrate'], env)).stdout).toMatch(/up to date/);
    const file = join(dir, 'users.ndjson');
    writeFileSync(file, '{"email":"cli1@example.test","password":"cli passphrase 1"}\n{"email":"cli2@example.test","password":"x"}\n');
    const imp = await run(['users', 'import', file], env);
    expect(imp.status).toBe(1);
    expect(JSON.parse(imp.stdout)).toMatchObject({ imported: 1, failed: 1, errors: [{ line: 2 }] });
    const op = await run(['operators', 'create', 'alice'], env);
    expect(op.status).toBe(0);
    const token = op.stdout.trim();
    expect(token).toMatch(/^fgo_/);
    expect((await run(['operators', 'create', 'alice'], env)).status).toBe(1);
    const s = await createServices(loadConfig(env), { logger: pino({ level: 'silent' }) });
    try {
      expect(await s.operators.authenticate(token, CLI_CONTEXT)).toMatchObject({ name: 'alice' });
      expect(await s.accounts.findByEmail('cli1@example.test')).toBeTruthy();
      expect((await run(['operators', 'revoke', 'alice'], env)).status).toBe(0);
      expect(await s.operators.authenticate(token, CLI_CONTEXT)).toBeNull();
    } finally {
      await s.storage.close();
    }
  });

  it.runIf(process.env.FLOODGATE_TEST_REDIS_URL)('ends one-shot commands when Redis is configured (connections closed)', async () => {
    const r = await run(['operators', 'create', 'redis-op'], { ...env, FLOODGATE_REDIS_URL: process.env.FLOODGATE_TEST_REDIS_URL! });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^fgo_/);
  });

  it('serves, logs its URL, and shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [...CLI, 'serve'], { cwd: dir, env: cleanEnv({ ...env, FLOODGATE_PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const t0 = Date.now();
    let ok = false;
    while (Date.now() - t0 < 20_000 && !ok && child.exitCode === null) {
      try { ok = (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200; } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    expect(ok, out).toBe(true);
    expect(out).toContain(`Floodgate is serving on http://127.0.0.1:${port}`);
    const code = await new Promise<number | null>((res) => { child.on('exit', (c) => res(c)); child.kill('SIGTERM'); });
    expect(code).toBe(0);
    expect(out).toMatch(/"msg":"stopped"/);
  });

  // A reader of standard output that stops reading (a stalled log shipper) used to freeze the
  // process: sync log writes retried the full pipe in a sleep loop on the event loop, so requests
  // stalled and SIGTERM never finished, not even by the 20 s force-exit timer.
  it('keeps answering and still stops on SIGTERM when nobody reads its standard output', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [...CLI, 'serve'], { cwd: dir, env: cleanEnv({ ...env, FLOODGATE_PORT: String(port), FLOODGATE_LOG_LEVEL: 'debug', FLOODGATE_COURIER: 'off' }), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause(); // never read: the pipe fills after a few hundred lines
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    const base = `http://127.0.0.1:${port}`;
    const t0 = Date.now();
    let up = false;
    while (Date.now() - t0 < 20_000 && !up && child.exitCode === null) {
      try { up = (await fetch(`${base}/healthz`)).status === 200; } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    expect(up, err).toBe(true);
    // Each request logs two lines of some 300 bytes: 2,000 of them are far more than a pipe holds.
    for (let i = 0; i < 2000; i++) expect((await fetch(`${base}/api/v1/no-such-route`, { signal: AbortSignal.timeout(5000) })).status).toBe(404);
    const metrics = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    expect(metrics).toMatch(/floodgate_log_lines_dropped_total \d+/);
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res('still running 15 s after SIGTERM'), 15_000))]);
    if (typeof code === 'string') child.kill('SIGKILL');
    expect(code, err).toBe(0);
  });
});
