/** `floodgate courier`: runs only the courier until SIGTERM, `--drain` once; a bad DKIM key stops the boot. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../kernel/clock.js';
import { SecretBox } from '../../kernel/crypto.js';
import { openStorage } from '../../storage/database.js';
import { decodeKey } from '../../config/schema.js';
import { waitFor } from '../../../test/helpers/smtp.js';
import { enqueueMail } from '../../../test/helpers/courier.js';
import { Outbox } from './outbox.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'src/cli/index.ts')];
const KEY = Buffer.alloc(32, 7).toString('base64');

function env(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOODGATE_')));
  return { ...base, FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir, FLOODGATE_SECRET_KEY: KEY, FLOODGATE_LOG_LEVEL: 'warn', ...extra };
}

describe('floodgate courier (CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fg-courier-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('delivers queued mail until SIGTERM, then stops cleanly', async () => {
    const storage = await openStorage({ kind: 'sqlite', file: join(dir, 'fg.db') });
    const outbox = new Outbox(systemClock, new SecretBox(decodeKey(KEY)!));
    try {
      for (let i = 0; i < 3; i++) await enqueueMail(outbox, storage.db, 'signup_existing', `cli${i}@example.test`, { email: `cli${i}@example.test` });
      const child = spawn(process.execPath, [...CLI, 'courier'], { cwd: dir, env: env(dir), stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => { err += d; });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const count = async () => (await storage.db.selectFrom('dev_mailbox').select('id').execute()).length;
      await waitFor(async () => (await count()) === 3, 30_000);
      // Rows enqueued by another process are picked up by the poll.
      await enqueueMail(outbox, storage.db, 'signup_existing', 'late@example.test', { email: 'late@example.test' });
      await waitFor(async () => (await count()) === 4, 10_000);
      child.kill('SIGTERM');
      expect(await exited, err).toBe(0);
      const states = await storage.db.selectFrom('outbox').select('state').distinct().execute();
      expect(states).toEqual([{ state: 'sent' }]);
    } finally {
      await storage.close();
    }
  }, 60_000);

  it('--drain delivers what is due and exits; --help describes the command', () => {
    const r = spawnSync(process.execPath, [...CLI, 'courier', '--drain'], { cwd: dir, env: env(dir), encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/handled \d+ outbox rows/);
    const help = spawnSync(process.execPath, [...CLI, 'courier', '--help'], { cwd: dir, env: env(dir), encoding: 'utf8', timeout: 60_000 });
    expect(help.stdout).toMatch(/Run only the courier/);
    expect(help.stdout).toMatch(/--drain/);
  }, 60_000);

  it('refuses to start with a DKIM key file it cannot read', () => {
    const r = spawnSync(process.execPath, [...CLI, 'courier'], {
      cwd: dir, encoding: 'utf8', timeout: 60_000,
      env: env(dir, { FLOODGATE_SMTP_URL: 'smtp://127.0.0.1:1', FLOODGATE_DKIM_DOMAIN: 'example.test', FLOODGATE_DKIM_SELECTOR: 's1', FLOODGATE_DKIM_KEY_FILE: join(dir, 'missing.pem') }),
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/FLOODGATE_DKIM_KEY_FILE: cannot read .*missing\.pem \(ENOENT\)/);
    expect(r.stderr).not.toMatch(/\s+at .+\.(js|ts):\d+/);
  }, 60_000);
});
