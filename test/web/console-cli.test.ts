import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { openStorage } from '../../src/storage/database.js';

function run(args: string[], env: Record<string, string>) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOODGATE_')));
  return runCli(args, { ...base, FLOODGATE_LOG_LEVEL: 'warn', ...env });
}

describe('floodgate operators grant / revoke-grant', () => {
  it('grants the console role to an existing account, warns without MFA, and revokes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-console-cli-'));
    const env = { FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir };
    const file = join(dir, 'users.ndjson');
    writeFileSync(file, '{"email":"ops@example.test","password":"console cli passphrase 1"}\n');
    expect((await run(['users', 'import', file], env)).status).toBe(0);

    const help = await run(['operators', 'grant', '--help'], env);
    expect(help.stdout).toMatch(/Usage: floodgate operators grant/);
    const unknown = await run(['operators', 'grant', 'nobody@example.test'], env);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/No account has the address nobody@example.test/);

    const g = await run(['operators', 'grant', 'ops@example.test'], env);
    expect(g.status).toBe(0);
    expect(g.stdout).toBe('granted the console operator role to ops@example.test\n');
    expect(g.stderr).toMatch(/no two-step verification yet/);

    const storage = await openStorage({ kind: 'sqlite', file: join(dir, 'fg.db') });
    try {
      const rows = await storage.db.selectFrom('console_operators').selectAll().execute();
      expect(rows).toMatchObject([{ granted_by: 'cli', revoked_at: null }]);
      const audit = await storage.db.selectFrom('audit_log').select(['action', 'target', 'operator_name']).execute();
      expect(audit).toEqual([{ action: 'console.grant', target: 'ops@example.test', operator_name: 'cli' }]);
    } finally {
      await storage.close();
    }

    const r = await run(['operators', 'revoke-grant', 'ops@example.test'], env);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('revoked the console operator role of ops@example.test\n');
    const again = await run(['operators', 'revoke-grant', 'ops@example.test'], env);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/has no console operator role/);
  }, 120_000);
});
