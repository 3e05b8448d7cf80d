/**
 * The storage adapter: the only place that imports a database driver. Everything else speaks
 * Kysely and stays dialect-agnostic; `dialect` is exposed for the one place that needs it
 * (claiming outbox rows with FOR UPDATE SKIP LOCKED on PostgreSQL).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { DatabaseUrl } from '../config/schema.js';
import type { Database } from './schema.js';
import { migrateToLatest } from './migrator.js';
import { WalCheckpointer, type CheckpointerOptions } from './checkpointer.js';

export type DialectName = 'sqlite' | 'postgres';

export interface Storage {
  db: Kysely<Database>;
  dialect: DialectName;
  /** SQLite files: the WAL checkpointer (null otherwise). */
  checkpointer?: WalCheckpointer | null;
  close(): Promise<void>;
}

// int8 (bigint) columns hold epoch milliseconds, far below 2^53: read them as numbers.
pg.types.setTypeParser(20, (v: string) => Number(v));

export interface OpenOptions {
  /** PostgreSQL only: a schema to create and use (tests isolate themselves this way). */
  schema?: string;
  /** Run pending migrations before returning (default true). */
  migrate?: boolean;
  poolSize?: number;
  /** SQLite files only: WAL checkpoints in a worker thread (see checkpointer.ts); false leaves them to SQLite. */
  checkpoints?: CheckpointerOptions | false;
  /**
   * PostgreSQL only: an idle pooled connection failed (the server restarted, failed over or cut
   * it). The pool drops that connection and opens a fresh one on the next query; this is told so
   * it can be logged. Default: a process warning.
   */
  onConnectionError?: (e: Error) => void;
}

/** How long a query waits for a PostgreSQL connection before it fails (and is answered 503). */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * better-sqlite3 prepares a statement on every query Kysely runs; the same few hundred SQL texts
 * repeat, so keep the prepared statements (bounded LRU by SQL text). Safe because Floodgate
 * never streams (iterates) a statement while running it again: every query is `all` or `run`.
 */
function withStatementCache(raw: SQLite.Database, max = 500): { close(): void; prepare(sql: string): SQLite.Statement } {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      raw.close();
    },
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt) {
        cache.delete(sql);
      } else {
        stmt = raw.prepare(sql);
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, stmt);
      return stmt;
    },
  };
}

export async function openStorage(url: DatabaseUrl, opts: OpenOptions = {}): Promise<Storage> {
  let storage: Storage;
  if (url.kind === 'sqlite') {
    if (url.file !== ':memory:') mkdirSync(dirname(url.file), { recursive: true });
    const raw = new SQLite(url.file);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('foreign_keys = ON');
    let checkpointer: WalCheckpointer | null = null;
    if (url.file !== ':memory:' && opts.checkpoints !== false) {
      checkpointer = new WalCheckpointer(url.file, { onError: (e) => process.emitWarning(`SQLite WAL checkpoint: ${e instanceof Error ? e.message : String(e)}`), ...opts.checkpoints });
      raw.pragma('wal_autocheckpoint = 0');
      // When a checkpointed WAL restarts, SQLite cuts the file back to this size, so the file's
      // size tells the checkpointer whether there is new work.
      raw.pragma(`journal_size_limit = ${Math.floor(checkpointer.thresholdBytes / 4)}`);
    }
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(raw) }) });
    storage = {
      db, dialect: 'sqlite', checkpointer,
      close: async () => {
        await checkpointer?.close();
        await db.destroy();
      },
    };
  } else {
    const schema = opts.schema;
    if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('invalid schema name');
    if (schema) {
      const c = new pg.Client({ connectionString: url.url });
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } finally {
        await c.end();
      }
    }
    const pool = new pg.Pool({
      connectionString: url.url,
      max: opts.poolSize ?? 10,
      // Without it a query waits forever for a connection to a database that does not answer.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // When the server restarts or fails over, every connection gets "terminating connection due
    // to administrator command" (57P01) or a closed socket. pg emits that as an 'error' event on
    // the client when no query is running on it: an idle client (the pool re-emits it on itself)
    // or one checked out between two queries (a transaction, the courier's claim). An 'error'
    // event nobody listens to is an uncaught exception: every database restart killed the
    // process. So every client gets a listener when it connects; the pool drops a broken client
    // when it is released and opens a fresh one for the next query.
    const onConnectionError = opts.onConnectionError ?? ((e: Error) => process.emitWarning(`PostgreSQL connection lost: ${e.message}`));
    pool.on('connect', (client) => client.on('error', (e) => onConnectionError(e)));
    pool.on('error', () => { /* the same error, already reported by the client's own listener */ });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    storage = { db, dialect: 'postgres', close: () => db.destroy() };
  }
  try {
    await sql`select 1`.execute(storage.db);
    if (opts.migrate !== false) await migrateToLatest(storage.db, url.kind === 'postgres' ? opts.schema : undefined);
  } catch (e) {
    await storage.close().catch(() => {});
    throw e;
  }
  return storage;
}
