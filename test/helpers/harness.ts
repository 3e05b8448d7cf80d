/**
 * Test harness: a real Floodgate over a real database. SQLite always (a temp file, WAL), and
 * PostgreSQL when FLOODGATE_TEST_POSTGRES_URL is set (a fresh schema per harness). Time goes
 * through a ManualClock; argon2id uses the production parameters unless a test asks otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/kernel/clock.js';
import { openStorage, type Storage } from '../../src/storage/database.js';
import { createFloodgate, type CreateOptions, type Floodgate } from '../../src/main.js';
import type { App } from '../../src/http/app.js';
import type { Services } from '../../src/services.js';

export type DialectName = 'sqlite' | 'postgres';

export const POSTGRES_URL = process.env.FLOODGATE_TEST_POSTGRES_URL || null;

/** The databases every storage-touching suite runs against. */
export const DIALECTS: DialectName[] = POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite'];

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

export interface TestStorage {
  storage: Storage;
  dir: string;
  dbFile: string | null;
  drop(): Promise<void>;
}

export async function openTestStorage(dialect: DialectName): Promise<TestStorage> {
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-test-'));
  if (dialect === 'sqlite') {
    const dbFile = join(dir, 'floodgate.db');
    const storage = await openStorage({ kind: 'sqlite', file: dbFile });
    return { storage, dir, dbFile, drop: async () => { await storage.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  if (!POSTGRES_URL) throw new Error('FLOODGATE_TEST_POSTGRES_URL is not set');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const storage = await underSchemaLock(() => openStorage({ kind: 'postgres', url: POSTGRES_URL! }, { schema, poolSize: 4 }));
  return {
    storage, dir, dbFile: null,
    drop: async () => {
      await storage.close();
      await dropTestSchema(schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const SCHEMA_LOCK = 7_215_001;

/**
 * Parallel test workers create, migrate and drop their schemas in one database. Kysely's migrator
 * introspects the tables of every schema (pg_get_serial_sequence on each), which fails with
 * "schema ... does not exist" when another worker drops its schema at that moment. So migrating
 * and dropping a test schema take one advisory lock. (Tests only: a deployment has one schema.)
 */
export async function underSchemaLock<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: POSTGRES_URL ?? undefined });
  await c.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK]);
    return await fn(c);
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]).catch(() => {});
    await c.end();
  }
}

export async function dropTestSchema(schema: string): Promise<void> {
  await underSchemaLock((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

export interface Harness {
  dialect: DialectName;
  fg: Floodgate;
  app: App;
  s: Services;
  clock: ManualClock;
  config: Config;
  dir: string;
  dbFile: string | null;
  close(): Promise<void>;
}

export interface HarnessOptions extends Omit<CreateOptions, 'storage' | 'clock'> {
  env?: Record<string, string>;
  clock?: ManualClock;
}

export async function makeHarness(dialect: DialectName, opts: HarnessOptions = {}): Promise<Harness> {
  const ts = await openTestStorage(dialect);
  const config = loadConfig({
    FLOODGATE_DATA_DIR: ts.dir,
    FLOODGATE_DATABASE_URL: ts.dbFile ? `sqlite:${ts.dbFile}` : POSTGRES_URL!,
    FLOODGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    FLOODGATE_PUBLIC_URL: 'http://floodgate.test',
    FLOODGATE_LOG_LEVEL: 'silent',
    FLOODGATE_COURIER: 'off',
    ...opts.env,
  });
  const clock = opts.clock ?? new ManualClock();
  const fg = await createFloodgate(config, { ...opts, storage: ts.storage, clock, logger: opts.logger ?? pino({ level: 'silent' }) });
  await fg.app.ready();
  return {
    dialect, fg, app: fg.app, s: fg.services, clock, config, dir: ts.dir, dbFile: ts.dbFile,
    close: async () => { await fg.close(); await ts.drop(); },
  };
}

/** JSON request through inject(); returns status, headers and parsed body. */
export async function call(app: App, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  let json: any = null;
  try { json = res.json(); } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, text: res.body, json };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function createUser(h: Harness, email: string, password: string, emailVerified = true): Promise<string> {
  const r = await call(h.app, 'POST', '/api/v1/admin/users', { email, password, emailVerified }, admin);
  if (r.status !== 201) throw new Error(`create user ${email}: ${r.status} ${r.text}`);
  return r.json.id as string;
}

export async function signIn(h: Harness, email: string, password: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<string> {
  const r = await call(h.app, 'POST', '/api/v1/sessions', { email, password, ...extra }, headers);
  if (r.status !== 201) throw new Error(`sign in ${email}: ${r.status} ${r.text}`);
  return r.json.token as string;
}

/** Redis for the shared-counter suites, when FLOODGATE_TEST_REDIS_URL is set (CI sets it). */
export const REDIS_URL = process.env.FLOODGATE_TEST_REDIS_URL || null;
export const STORES: ('memory' | 'redis')[] = REDIS_URL ? ['memory', 'redis'] : ['memory'];
