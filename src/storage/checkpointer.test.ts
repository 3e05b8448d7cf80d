import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
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
