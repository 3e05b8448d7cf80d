#!/usr/bin/env node
// User import throughput: NDJSON streamed to POST /api/v1/admin/users/import, rows carrying an
// existing argon2id hash (the migration case), next to the raw rate of writing the same rows with
// one multi-row INSERT per 100 rows in the same SQLite, measured in the same run.
// BENCH_IMPORT_HASH=bcrypt (cost 10) or scrypt (ln=14, r=8, p=1) imports legacy hashes instead:
// each row's cost parameters are checked against the bounds, and its kind joins the set every
// sign-in runs; no hash is computed for it.
import { randomBytes, scryptSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash } from '@node-rs/argon2';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import SQLite from 'better-sqlite3';
import { ADMIN, post, startFloodgate } from './lib.mjs';

const N = Number(process.env.BENCH_IMPORT_N || 20000);
const KIND = process.env.BENCH_IMPORT_HASH || 'argon2id';
const salt = randomBytes(16);
const phc = KIND === 'bcrypt' ? await bcryptHash('imported passphrase', 10)
  : KIND === 'scrypt' ? `$scrypt$ln=14,r=8,p=1$${salt.toString('base64')}$${scryptSync('imported passphrase', salt, 32, { N: 2 ** 14, r: 8, p: 1 }).toString('base64')}`
    : await hash('imported passphrase', { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 });
const body = Array.from({ length: N }, (_, i) => JSON.stringify({ email: `imported${i}@example.test`, passwordHash: phc, emailVerified: true })).join('\n') + '\n';

const fg = await startFloodgate();
const t0 = performance.now();
const r = await post(fg.url, '/api/v1/admin/users/import', body, { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' });
const secs = (performance.now() - t0) / 1000;
await fg.stop();
const report = JSON.parse(r.text);

const db = new SQLite(join(mkdtempSync(join(tmpdir(), 'fg-imp-')), 'raw.db'));
db.pragma('journal_mode = WAL');
db.exec('create table users (id text primary key, email text, email_normalized text unique, password_hash text, created_at integer)');
const t1 = performance.now();
const insert = db.prepare(`insert into users values ${Array.from({ length: 100 }, () => '(?, ?, ?, ?, ?)').join(', ')}`);
db.transaction(() => {
  for (let i = 0; i < N; i += 100) insert.run(...Array.from({ length: 100 }, (_, j) => [`id${i + j}`, `imported${i + j}@example.test`, `imported${i + j}@example.test`, phc, Date.now()]).flat());
})();
const rawSecs = (performance.now() - t1) / 1000;
console.log(`import via the API (${KIND} hashes): ${report.imported} imported, ${report.failed} failed, ${(N / secs).toFixed(0)} rows/s (${secs.toFixed(2)} s for ${N})`);
console.log(`raw SQLite multi-row insert baseline: ${(N / rawSecs).toFixed(0)} rows/s; API/raw ${((N / secs) / (N / rawSecs)).toFixed(3)}`);
process.exit(0);
