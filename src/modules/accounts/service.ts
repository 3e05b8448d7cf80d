/**
 * Accounts: sign-up, operator creation and import, email verification, credential checks.
 * Invariants:
 * - sign-up answers the same whether or not the email exists, after the same work (one argon2id
 *   hash either way); the owner of an existing address gets a notice instead of a second account;
 * - verification tokens are `id.secret`, 256-bit secret, only sha256(secret) stored, single use,
 *   30-minute expiry, replaced by a newer one, dead once the password changes;
 * - a wrong password and an unknown email cost the same (the same hashes: password-hasher.ts) and look the same;
 * - an address is unconfirmed until its mailbox proves it (the verification link, or a completed
 *   reset), whoever created the account (sign-up, operator, import without `emailVerified`); at
 *   that first proof everything made on the account before it (sessions, device cookies,
 *   factors, pending set-ups) goes in the same transaction: it was made by whoever typed the
 *   address, who need not be its owner (pre-account hijack);
 * - a password change (reset, change) kills, in its own transaction, every link issued under the
 *   old password: verification links here, reset links through `onPasswordChanged`.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { MINUTE, type Clock } from '../../kernel/clock.js';
import type { Cause, RequestContext } from '../../kernel/context.js';
import { mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import { isPlausibleEmail, normalizeEmail } from '../../kernel/email.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Database, Db } from '../../storage/schema.js';
import type { SecurityEvents } from '../incidents/index.js';
import type { Outbox } from '../notifications/index.js';
import { HashPopulation } from './hash-population.js';
import { MAX_PASSWORD_BYTES, type PasswordHasher } from './password-hasher.js';
import { checkPassword, contextWords, PASSWORD_PROBLEM_TEXT, type BreachedPasswords, type PasswordProblem } from './password-policy.js';
import { accountsStore, type UserRow } from './store.js';

export const VERIFICATION_TTL_MS = 30 * MINUTE;

export interface AccountsDeps {
  db: Kysely<Database>;
  clock: Clock;
  hasher: PasswordHasher;
  breached: BreachedPasswords;
  events: SecurityEvents;
  outbox: Outbox;
  publicUrl: string;
  /** Warnings about stored hashes beyond the cost bounds (hash-population.ts). */
  logger?: Logger | undefined;
}

export interface NewUserInput {
  email: string;
  password?: string | undefined;
  passwordHash?: string | undefined;
  emailVerified?: boolean | undefined;
}

export interface ImportReport {
  imported: number;
  failed: number;
  lines: number;
  errors: { line: number; error: string }[];
}

/**
 * What another module holds for an account that the first proof of its address must clear, in
 * that proof's transaction (`db`); returns what it cleared, by name, for the security event.
 */
export type MailboxProvenHook = (db: Db, userId: string, ctx: RequestContext) => Promise<Record<string, number>>;
/** What must die with the old password, in the change's transaction (`db`): reset links. */
export type PasswordChangedHook = (db: Db, userId: string) => Promise<void>;

export class AccountsService {
  /** The kinds of stored hash every verification runs one of (hash-population.ts). */
  readonly hashes: HashPopulation;
  private readonly mailboxHooks: MailboxProvenHook[] = [];
  private readonly passwordHooks: PasswordChangedHook[] = [];

  constructor(private readonly d: AccountsDeps) {
    this.hashes = new HashPopulation(d);
  }

  /** Register what the first proof of an address clears (main.ts: sessions, MFA factors). */
  onMailboxProven(hook: MailboxProvenHook): void {
    this.mailboxHooks.push(hook);
  }

  /** Register what a password change kills (main.ts: the recovery module's reset links). */
  onPasswordChanged(hook: PasswordChangedHook): void {
    this.passwordHooks.push(hook);
  }

  /**
   * The password rules for a new password of the account with this (normalised) address: the one
   * check that sign-up, operator creation, import, reset and change all make.
   */
  passwordProblem(password: string, emailNormalized: string | null): Promise<PasswordProblem | null> {
    return checkPassword(password, emailNormalized, this.d.breached, contextWords(this.d.publicUrl, emailNormalized));
  }

  /** Validates email and password; returns the normalised email or throws a 400. */
  async validateNew(email: string, password: string): Promise<string> {
    const normalized = normalizeEmail(email);
    if (!isPlausibleEmail(normalized)) throw new AppError('invalid_request', 'Enter a valid email address.', { extra: { errors: [{ field: 'email', message: 'Enter a valid email address.' }] } });
    const problem = await this.passwordProblem(password, normalized);
    if (problem) throw new AppError('weak_password', PASSWORD_PROBLEM_TEXT[problem], { extra: { reason: problem, errors: [{ field: 'password', message: PASSWORD_PROBLEM_TEXT[problem] }] } });
    return normalized;
  }

  /** Self-service sign-up. Same answer and same work whether or not the email exists. */
  async signUp(email: string, password: string, ctx: RequestContext): Promise<void> {
    const normalized = await this.validateNew(email, password);
    const hash = await this.d.hasher.hash(password);
    const now = this.d.clock.now();
    const cause: Cause = { kind: 'anonymous', requestId: ctx.requestId, ip: ctx.ip };
    await this.d.db.transaction().execute(async (trx) => {
      const existing = await accountsStore.findByEmail(trx, normalized);
      if (existing) {
        await this.d.events.record(trx, 'account.signup_existing', existing.id, ctx);
        // One notice per address per day at most, whatever the number of attempts.
        const day = Math.floor(now / 86_400_000);
        await this.d.outbox.enqueue(trx, {
          type: 'signup_existing', channel: 'email', userId: existing.id, recipient: existing.email, cause,
          data: { email: existing.email }, idempotencyKey: `signup_existing:${existing.id}:${day}`,
        });
        return;
      }
      const id = newId(now);
      const inserted = await accountsStore.insert(trx, {
        id, email: email.trim().normalize('NFC'), email_normalized: normalized, password_hash: hash, email_verified_at: null,
        created_at: now, updated_at: now, password_changed_at: now, locked_at: null,
      });
      if (!inserted) return; // lost a race with a concurrent sign-up for the same address
      await this.d.events.record(trx, 'account.created', id, ctx, { via: 'signup' });
      await this.issueVerification(trx, id, email.trim().normalize('NFC'), cause);
    });
  }

  private async issueVerification(db: Db, userId: string, email: string, cause: Cause): Promise<void> {
    const now = this.d.clock.now();
    const t = mintToken();
    await accountsStore.insertVerification(db, { id: t.id, user_id: userId, secret_hash: t.secretHash, created_at: now, expires_at: now + VERIFICATION_TTL_MS });
    await this.d.outbox.enqueue(db, {
      type: 'verify_email', channel: 'email', userId, recipient: email, cause,
      data: { email, expiresInMinutes: VERIFICATION_TTL_MS / MINUTE },
      secret: { link: `${this.d.publicUrl}/verify?token=${t.token}` },
      idempotencyKey: `verify_email:${userId}:${t.id}`,
    });
  }

  /** Resend a verification mail. Always answered the same; sends only for unverified accounts. */
  async resendVerification(email: string, ctx: RequestContext): Promise<void> {
    const normalized = normalizeEmail(email);
    if (!isPlausibleEmail(normalized)) return;
    await this.d.db.transaction().execute(async (trx) => {
      const user = await accountsStore.findByEmail(trx, normalized);
      if (user) await this.resendIn(trx, user, ctx);
    });
  }

  /** The same rules for an account already in hand (the right password of an unconfirmed address at sign-in). */
  async resendVerificationTo(user: UserRow, ctx: RequestContext): Promise<void> {
    await this.d.db.transaction().execute(async (trx) => {
      const fresh = await accountsStore.findById(trx, user.id);
      if (fresh) await this.resendIn(trx, fresh, ctx);
    });
  }

  private async resendIn(trx: Db, user: UserRow, ctx: RequestContext): Promise<void> {
    if (user.email_verified_at !== null) return;
    // Reuse, don't re-mail: while a token is live, no new mail at once.
    const live = await accountsStore.liveVerification(trx, user.id, this.d.clock.now());
    if (live && this.d.clock.now() - live.created_at < 5 * MINUTE) return;
    await this.issueVerification(trx, user.id, user.email, { kind: 'anonymous', requestId: ctx.requestId, ip: ctx.ip });
  }

  /** Consume a verification token. false for bad, used or expired tokens (one generic answer). */
  async verifyEmail(token: string, ctx: RequestContext): Promise<boolean> {
    const parsed = parseToken(token);
    if (!parsed) return false;
    const now = this.d.clock.now();
    return this.d.db.transaction().execute(async (trx) => {
      const row = await accountsStore.findVerification(trx, parsed.id);
      if (!row || !secretMatches(parsed.secret, row.secret_hash) || row.expires_at <= now) return false;
      if (!(await accountsStore.consumeVerification(trx, row.id))) return false;
      await this.proveMailbox(trx, row.user_id, ctx, 'verification');
      return true;
    });
  }

  /**
   * The mailbox owner proved the address (the verification link, a completed reset), inside the
   * caller's transaction. At the first proof the account becomes verified and whatever was made
   * on it before goes: sessions, device cookies, "this wasn't me" tokens, TOTP (pending or not),
   * passkeys, recovery codes, passkey challenges, verification links (the hooks and this module),
   * recorded as `account.pre_verification_cleared` when anything was there. A squatter who signed
   * up with someone else's address keeps nothing. Returns whether this was the first proof.
   */
  async proveMailbox(db: Db, userId: string, ctx: RequestContext, via: 'verification' | 'reset'): Promise<boolean> {
    // The conditional UPDATE is the check: only the first proof clears anything.
    if (!(await accountsStore.markVerified(db, userId, this.d.clock.now()))) return false;
    const cleared: Record<string, number> = {};
    for (const hook of this.mailboxHooks) Object.assign(cleared, await hook(db, userId, ctx));
    await accountsStore.deleteVerifications(db, userId);
    await this.d.events.record(db, 'account.email_verified', userId, ctx, { via });
    if (Object.values(cleared).some((n) => n > 0)) await this.d.events.record(db, 'account.pre_verification_cleared', userId, ctx, { via, ...cleared });
    return true;
  }

  /** Operator creation of one user. 409 when the email is taken. */
  async createByOperator(input: NewUserInput, ctx: RequestContext, operatorId: string): Promise<{ id: string; email: string }> {
    const row = await this.prepareRow(input);
    if (typeof row === 'string') throw new AppError(row.startsWith('password:') ? 'weak_password' : 'invalid_request', row);
    const inserted = await this.d.db.transaction().execute(async (trx) => {
      if (!(await accountsStore.insert(trx, row))) return false;
      await this.d.events.record(trx, 'account.created', row.id, ctx, { via: 'operator', operator: operatorId });
      return true;
    });
    if (!inserted) throw new AppError('conflict', 'An account with this email already exists.');
    return { id: row.id, email: row.email };
  }

  /** Validate and hash one new user; a string is the reason it was refused. */
  private async prepareRow(input: NewUserInput): Promise<UserRow | string> {
    if (typeof input.email !== 'string') return 'email is required';
    const normalized = normalizeEmail(input.email);
    if (!isPlausibleEmail(normalized)) return 'email is not a valid address';
    let hash: string;
    if (input.passwordHash !== undefined && input.password !== undefined) return 'give password or passwordHash, not both';
    if (typeof input.passwordHash === 'string') {
      if (input.passwordHash.length > 512) return 'passwordHash must be at most 512 characters';
      // Bounded costs; its kind joins what every sign-in runs before the row exists (password-hasher.ts).
      const problem = await this.hashes.admit(input.passwordHash);
      if (problem) return problem;
      hash = input.passwordHash;
    } else if (typeof input.password === 'string') {
      const problem = await this.passwordProblem(input.password, normalized);
      if (problem) return `password: ${PASSWORD_PROBLEM_TEXT[problem]}`;
      hash = await this.d.hasher.hash(input.password);
    } else return 'password or passwordHash is required';
    const now = this.d.clock.now();
    return {
      id: newId(now), email: input.email.trim().normalize('NFC'), email_normalized: normalized, password_hash: hash,
      email_verified_at: input.emailVerified ? now : null, created_at: now, updated_at: now, password_changed_at: now, locked_at: null,
    };
  }

  /**
   * Import NDJSON lines. Each line is atomic: it is written whole or reported with its line
   * number; lines are committed in batches of up to 500 rows, one transaction per batch.
   */
  async importLines(lines: AsyncIterable<string>, ctx: RequestContext, operatorId: string): Promise<ImportReport> {
    const report: ImportReport = { imported: 0, failed: 0, lines: 0, errors: [] };
    const fail = (line: number, error: string) => {
      report.failed++;
      if (report.errors.length < 1000) report.errors.push({ line, error });
    };
    let batch: { line: number; input: NewUserInput }[] = [];
    const flush = async () => {
      const todo = batch;
      batch = [];
      if (!todo.length) return;
      const prepared = await mapLimit(todo, 4, async (t) => ({ line: t.line, row: await this.prepareRow(t.input) }));
      const seen = new Set<string>();
      const rows: { line: number; row: UserRow }[] = [];
      for (const p of prepared) {
        if (typeof p.row === 'string') fail(p.line, p.row);
        else if (seen.has(p.row.email_normalized)) fail(p.line, 'email appears twice in this import');
        else {
          seen.add(p.row.email_normalized);
          rows.push({ line: p.line, row: p.row });
        }
      }
      await this.d.db.transaction().execute(async (trx) => {
        const taken = await accountsStore.existingEmails(trx, rows.map((r) => r.row.email_normalized));
        const fresh = rows.filter((r) => {
          if (taken.has(r.row.email_normalized)) fail(r.line, 'an account with this email already exists');
          return !taken.has(r.row.email_normalized);
        });
        for (let i = 0; i < fresh.length; i += 100) {
          const chunk = fresh.slice(i, i + 100);
          await trx.insertInto('users').values(chunk.map((c) => c.row)).execute();
        }
        report.imported += fresh.length;
      });
    };
    for await (const raw of lines) {
      report.lines++;
      const line = report.lines;
      const text = raw.trim();
      if (!text) continue;
      if (Buffer.byteLength(text) > 4096) {
        fail(line, 'line longer than 4096 bytes');
        continue;
      }
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch {
        fail(line, 'not valid JSON');
        continue;
      }
      const problem = importShapeProblem(obj);
      if (problem) {
        fail(line, problem);
        continue;
      }
      batch.push({ line, input: obj as NewUserInput });
      if (batch.length >= 500) await flush();
    }
    await flush();
    await this.d.events.record(this.d.db, 'account.imported', null, ctx, { operator: operatorId, imported: report.imported, failed: report.failed });
    return report;
  }

  /**
   * Check credentials, after the same work for an unknown email as for a known one. `user` is the
   * account the email names (null when none), `ok` whether the password matched. Upgrades legacy
   * hashes on success.
   */
  async verifyCredentials(email: string, password: string, ctx: RequestContext): Promise<{ user: UserRow | null; ok: boolean }> {
    // Every path runs one hash of each stored kind, so the kinds must be known first (hash-population.ts).
    await this.hashes.ready();
    const normalized = normalizeEmail(email);
    const user = isPlausibleEmail(normalized) ? await accountsStore.findByEmail(this.d.db, normalized) : undefined;
    if (!user || !user.password_hash || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
      await this.d.hasher.verifyDummy(password);
      return { user: user ?? null, ok: false };
    }
    const r = await this.d.hasher.verify(user.password_hash, password);
    if (r.refused) this.hashes.refusedAtSignIn(user.id, r.refused);
    if (!r.ok) return { user, ok: false };
    if (r.needsRehash) {
      const upgraded = await this.d.hasher.hash(password);
      await accountsStore.upgradeHash(this.d.db, user.id, user.password_hash, upgraded, this.d.clock.now());
      await this.d.events.record(this.d.db, 'password.rehashed', user.id, ctx);
    }
    return { user, ok: true };
  }

  /** Every account, in id order, in pages (broadcasts to all users). */
  async *allAccounts(pageSize = 1000): AsyncGenerator<{ id: string; email: string }[]> {
    let after = '';
    for (;;) {
      const page = await this.d.db.selectFrom('users').select(['id', 'email']).where('id', '>', after).orderBy('id').limit(pageSize).execute();
      if (!page.length) return;
      yield page;
      after = page[page.length - 1]!.id;
    }
  }

  /** The accounts among these addresses (unknown ones are left out). */
  async accountsByEmails(emails: string[]): Promise<{ id: string; email: string }[]> {
    const normalized = [...new Set(emails.map(normalizeEmail).filter(isPlausibleEmail))];
    const out: { id: string; email: string }[] = [];
    for (let i = 0; i < normalized.length; i += 500) {
      out.push(...(await this.d.db.selectFrom('users').select(['id', 'email']).where('email_normalized', 'in', normalized.slice(i, i + 500)).execute()));
    }
    return out;
  }

  findByEmail(email: string): Promise<UserRow | undefined> {
    const normalized = normalizeEmail(email);
    return isPlausibleEmail(normalized) ? accountsStore.findByEmail(this.d.db, normalized) : Promise.resolve(undefined);
  }

  findById(id: string): Promise<UserRow | undefined> {
    return accountsStore.findById(this.d.db, id);
  }

  /**
   * Set a new password inside the caller's transaction (reset, change); it lifts a lock. Every
   * link issued under the old password dies in the same transaction (DESIGN: tokens "die when the
   * password changes"): verification links here, reset links through the hooks. Validation is
   * the caller's.
   */
  async setPassword(db: Db, userId: string, hash: string): Promise<void> {
    // Hooks first: the recovery module takes its per-account row lock before the users row is
    // written, the order its own confirm takes them in (no lock-order deadlock on PostgreSQL).
    for (const hook of this.passwordHooks) await hook(db, userId);
    await accountsStore.deleteVerifications(db, userId);
    await accountsStore.setPasswordHash(db, userId, hash, this.d.clock.now(), true);
  }
}

const IMPORT_FIELDS = new Set(['email', 'password', 'passwordHash', 'emailVerified']);

function importShapeProblem(obj: unknown): string | null {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return 'each line must be a JSON object';
  for (const k of Object.keys(obj)) if (!IMPORT_FIELDS.has(k)) return `unknown field "${k.slice(0, 40)}"`;
  const o = obj as Record<string, unknown>;
  if (typeof o.email !== 'string' || o.email.length > 320) return 'email must be a string of at most 320 characters';
  if (o.password !== undefined && (typeof o.password !== 'string' || o.password.length > 1024)) return 'password must be a string of at most 1024 characters';
  if (o.passwordHash !== undefined && typeof o.passwordHash !== 'string') return 'passwordHash must be a string';
  if (o.emailVerified !== undefined && typeof o.emailVerified !== 'boolean') return 'emailVerified must be a boolean';
  return null;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
