/**
 * The kinds of password hash the users table holds, kept in the hasher so that every verification
 * runs one hash of each (password-hasher.ts says why). Invariants:
 * - the first verification after start waits for one full read of the stored hashes (only those
 *   not of the current argon2id class are fetched, a page at a time), so no sign-in runs before
 *   the set is known;
 * - imports and operator-created users add their hash's class before their row is written;
 * - rows written by another instance are read within NEW_ROWS_EVERY (by id, which starts with the
 *   time it was made; a few minutes of margin for clocks that disagree);
 * - a full read every FULL_READ_EVERY drops classes no account holds any more (upgraded on sign-in);
 * - a stored hash beyond the cost bounds never joins the set; the accounts holding one are logged
 *   (ids and counts, never a hash), each account once per process at sign-in.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { HOUR, MINUTE, SECOND, type Clock } from '../../kernel/clock.js';
import type { Database } from '../../storage/schema.js';
import { costClass, type CostClass, type PasswordHasher } from './password-hasher.js';

export const FULL_READ_EVERY = HOUR;
export const NEW_ROWS_EVERY = 30 * SECOND;
/** How far back a read of new rows starts, for instances whose clocks disagree. */
const CLOCK_MARGIN = 5 * MINUTE;
const PAGE = 5000;
/** Accounts warned about at sign-in, at most (the memory stays bounded). */
const MAX_WARNED = 10_000;

export interface HashPopulationDeps {
  db: Kysely<Database>;
  clock: Clock;
  hasher: PasswordHasher;
  logger?: Logger | undefined;
}

export class HashPopulation {
  private first: Promise<void> | null = null;
  private loaded = false;
  private background: Promise<void> | null = null;
  private lastFull = 0;
  private lastNew = 0;
  /** After a failed background read, the next waits this long (not one per sign-in). */
  private notBefore = 0;
  private shown = '';
  private readonly warned = new Set<string>();

  constructor(private readonly d: HashPopulationDeps) {}

  /**
   * Resolves when the set of classes is known: the first call reads the table (every caller
   * waits for it); later calls start a background read when one is due and return at once.
   */
  ready(): Promise<void> {
    if (!this.loaded) {
      this.first ??= this.readAll().then(() => { this.loaded = true; }, (e: unknown) => { this.first = null; throw e; });
      return this.first;
    }
    const now = this.d.clock.now();
    if (!this.background && now >= this.notBefore) {
      const due = now - this.lastFull >= FULL_READ_EVERY ? this.readAll() : now - this.lastNew >= NEW_ROWS_EVERY ? this.readNew() : null;
      if (due) {
        this.background = due
          .catch((e: unknown) => {
            this.notBefore = this.d.clock.now() + NEW_ROWS_EVERY;
            this.d.logger?.warn({ err: e instanceof Error ? e.message : String(e) }, 'reading the stored password hash kinds failed; will retry');
          })
          .finally(() => { this.background = null; });
      }
    }
    return Promise.resolve();
  }

  /** Waits for a background read in progress, if any. */
  async idle(): Promise<void> {
    await this.background;
  }

  /**
   * For an import: null when `stored` may be written (its class is in the set now), or why not.
   */
  async admit(stored: string): Promise<string | null> {
    await this.ready();
    return this.d.hasher.admit(stored);
  }

  /** A stored hash beyond the bounds met at sign-in: warned once per account (the reason, never the hash). */
  refusedAtSignIn(userId: string, reason: string): void {
    if (this.warned.has(userId) || this.warned.size >= MAX_WARNED) return;
    this.warned.add(userId);
    this.d.logger?.warn({ userId, reason },
      'stored password hash beyond the cost bounds: not run, the sign-in failed as with a wrong password; the account needs a password reset');
  }

  /** Read every stored hash not of the current class; the set becomes what is found. */
  async readAll(): Promise<void> {
    const started = this.d.clock.now();
    const mark = this.d.hasher.mark();
    const { counts, beyond } = await this.scan('');
    const found = [...counts.values()].sort((a, b) => b.n - a.n);
    const left = this.d.hasher.replaceLegacy(found.map((f) => f.cls), mark);
    this.lastFull = started;
    this.lastNew = started;
    const shown = JSON.stringify([found.map((f) => [f.cls.key, f.n]), [...beyond], left]);
    if (shown === this.shown) return;
    this.shown = shown;
    if (found.length) {
      this.d.logger?.info({ classes: Object.fromEntries(found.map((f) => [f.cls.key, f.n])) },
        'legacy password hashes in use: every sign-in runs one hash of each kind until they are upgraded');
    }
    if (left.length) {
      this.d.logger?.warn({ left }, 'more kinds of legacy password hash than allowed: sign-ins to accounts of these kinds take longer than others until upgraded');
    }
    if (beyond.size) {
      this.d.logger?.warn({ accounts: Object.fromEntries(beyond) }, 'stored password hashes beyond the cost bounds: these accounts cannot sign in with a password until reset');
    }
  }

  /** Read the rows made since the last read (another instance's import). */
  async readNew(): Promise<void> {
    const started = this.d.clock.now();
    const { counts } = await this.scan(idAt(this.lastNew - CLOCK_MARGIN));
    for (const { cls } of [...counts.values()].sort((a, b) => b.n - a.n)) this.d.hasher.admitClass(cls);
    this.lastNew = started;
  }

  private async scan(fromId: string): Promise<{ counts: Map<string, { cls: CostClass; n: number }>; beyond: Map<string, number> }> {
    const counts = new Map<string, { cls: CostClass; n: number }>();
    const beyond = new Map<string, number>();
    // Every row of the current class starts with this prefix (no LIKE wildcard in it): skipped by the database.
    const prefix = `${this.d.hasher.currentPrefix}%`;
    let after = fromId;
    for (;;) {
      const page = await this.d.db.selectFrom('users').select(['id', 'password_hash'])
        .where('id', '>', after).where('password_hash', 'is not', null).where('password_hash', 'not like', prefix)
        .orderBy('id').limit(PAGE).execute();
      for (const row of page) {
        const c = costClass(row.password_hash!);
        if (!c) continue;
        if (c.problem) beyond.set(c.cls.key, (beyond.get(c.cls.key) ?? 0) + 1);
        else {
          const e = counts.get(c.cls.key);
          if (e) e.n++;
          else counts.set(c.cls.key, { cls: c.cls, n: 1 });
        }
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.id;
    }
    return { counts, beyond };
  }
}

const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Below every id made at `ms` or later (an id starts with its time, 10 digits: kernel/ids.ts). */
function idAt(ms: number): string {
  let time = '';
  for (let i = 0, t = Math.max(0, Math.floor(ms)); i < 10; i++, t = Math.floor(t / 32)) time = ID_ALPHABET[t % 32]! + time;
  return time;
}
