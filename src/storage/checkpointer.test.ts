import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { buildSync } from 'esbuild';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openStorage } from './database.js';

describe('SQLite WAL checkpoints in a worker', () => {
  it('leaves the WAL to the worker, which moves every page into the database file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fg-ckpt-')), 'fg.db');
    const storage = await openStorage({ kind: 'sqlite', file }, { checkpoints: { thresholdBytes: 64 * 1024, intervalMs: 60_000 } });
    try {
      const ck = storage.checkpointer!;
      expect(ck).toBeTruthy();
      await sql`create table t (id integer primary key, v text)`.execute(storage.db);
      for (let i = 0; i < 300; i++) await sql`insert into t (v) values (${'x'.repeat(500)})`.execute(storage.db);
      // Automatic checkpoints are off: the WAL keeps everything until the worker runs.
      expect(statSync(`${file}-wal`).size).toBeGreaterThan(64 * 1024);
      await ck.tick();
      expect(ck.stats.checkpoints).toBe(1);
      expect(ck.stats.lastPages).toBeGreaterThan(30);
      // The database file alone (read without the WAL) now holds every row.
      const copy = new SQLite(file, { readonly: true });
      try {
        expect((copy.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(300);
      } finally {
        copy.close();
      }
      // A small WAL does not wake the worker.
      await sql`insert into t (v) values ('y')`.execute(storage.db);
      await ck.tick();
      expect(ck.stats.checkpoints).toBe(1);
    } finally {
      await storage.close();
    }
  });
});

describe('closing a database whose checkpoint worker runs', () => {
  it('waits for the worker to close its connection, even when nothing else keeps the process alive', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-ckpt-'));
    const root = join(import.meta.dirname, '../..');
    // Bundled to plain JavaScript and run by plain node: a loader such as tsx keeps a thread of
    // its own alive, which would hide exactly the early exit this test is about.
    const script = join(dir, 'close.ts');
    writeFileSync(script, `
      import { sql } from 'kysely';
      import { openStorage } from ${JSON.stringify(join(root, 'src/storage/database.ts'))};
      const storage = await openStorage({ kind: 'sqlite', file: ${JSON.stringify(join(dir, 'fg.db'))} }, { checkpoints: { thresholdBytes: 16 * 1024, intervalMs: 60_000 } });
      await sql\`create table t (v text)\`.execute(storage.db);
      for (let i = 0; i < 100; i++) await sql\`insert into t (v) values (\${'x'.repeat(500)})\`.execute(storage.db);
      await storage.checkpointer!.tick();
      await storage.close();
      console.log('closed after', storage.checkpointer!.stats.checkpoints, 'checkpoint');
    `);
    // Inside the project, so that the bundle's bare imports resolve from its node_modules.
    const outfile = join(root, 'node_modules/.cache/floodgate-tests', `close-${Date.now()}.mjs`);
    buildSync({ entryPoints: [script], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile, logLevel: 'silent' });
    const r = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 30_000 });
    rmSync(outfile, { force: true });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('closed after 1 checkpoint');
    expect(r.status).toBe(0);
  });
});
