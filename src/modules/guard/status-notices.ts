/**
 * The public status page's notices (table status_notices): one definition of "what the public
 * sees", shared by GET /api/v1/status and the hosted /status page, plus publish and resolve for
 * the console. Notices are operator-written text: pages render it escaped, never as markup.
 */
import { newId } from '../../kernel/ids.js';
import type { Db } from '../../storage/schema.js';

export type NoticeSeverity = 'info' | 'warning' | 'critical';

export interface StatusNotice {
  id: string;
  title: string;
  body: string;
  severity: string;
  publishedAt: string;
  resolvedAt: string | null;
}

/** How long a resolved notice stays on the public page. */
export const RESOLVED_NOTICE_DAYS = 30;

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

/** Public notices: every open one, and those published in the last 30 days; newest first, at most 50. */
export async function publicStatusNotices(db: Db, now: number): Promise<StatusNotice[]> {
  const since = now - RESOLVED_NOTICE_DAYS * 86_400_000;
  const rows = await db.selectFrom('status_notices').selectAll().where((eb) => eb.or([eb('resolved_at', 'is', null), eb('published_at', '>=', since)])).orderBy('published_at', 'desc').limit(50).execute();
  return rows.map((r) => ({ id: r.id, title: r.title, body: r.body, severity: r.severity, publishedAt: iso(r.published_at)!, resolvedAt: iso(r.resolved_at) }));
}

/** Insert a notice (in the caller's transaction, beside its audit entry). */
export async function publishStatusNotice(db: Db, now: number, input: { title: string; body: string; severity: NoticeSeverity }, by: string): Promise<StatusNotice> {
  const id = newId(now);
  await db.insertInto('status_notices').values({ id, title: input.title, body: input.body, severity: input.severity, published_at: now, resolved_at: null, created_by: by }).execute();
  return { id, title: input.title, body: input.body, severity: input.severity, publishedAt: iso(now)!, resolvedAt: null };
}

/** Mark an open notice resolved; false when no open notice has this id. */
export async function resolveStatusNotice(db: Db, now: number, id: string): Promise<boolean> {
  const r = await db.updateTable('status_notices').set({ resolved_at: now }).where('id', '=', id).where('resolved_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
