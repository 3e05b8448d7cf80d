import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as m0001 from './migrations/0001-foundation.js';
import * as m0002 from './migrations/0002-courier.js';
import * as m0003 from './migrations/0003-recovery.js';
import * as m0004 from './migrations/0004-mfa.js';
import * as m0005 from './migrations/0005-guard.js';
import * as m0006 from './migrations/0006-console.js';
import * as m0007 from './migrations/0007-signin-notices.js';
import * as m0008 from './migrations/0008-session-devices.js';
import * as m0009 from './migrations/0009-broadcast-approvals.js';
import * as m0010 from './migrations/0010-devices.js';

/** Migrations are frozen in time: each takes Kysely<any> and never imports app code. */
const MIGRATIONS: Record<string, Migration> = {
  '0001-foundation': m0001,
  '0002-courier': m0002,
  '0003-recovery': m0003,
  '0004-mfa': m0004,
  '0005-guard': m0005,
  '0006-console': m0006,
  '0007-signin-notices': m0007,
  '0008-session-devices': m0008,
  '0009-broadcast-approvals': m0009,
  '0010-devices': m0010,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

/**
 * `schema` (PostgreSQL): where the migration bookkeeping lives. Without it Kysely looks for its
 * tables in every schema of the database and, finding another schema's, skips creating its own.
 */
export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({ db, provider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
