/**
 * Table types for Kysely. Times are integer milliseconds since the epoch (bigint in PostgreSQL,
 * read back as numbers), booleans are 0/1 integers, JSON is text: one representation that both
 * dialects store the same way. Each module reads and writes only its own tables.
 */
import type { Kysely, Transaction } from 'kysely';

export interface UsersTable {
  id: string;
  email: string;
  email_normalized: string;
  password_hash: string | null;
  email_verified_at: number | null;
  created_at: number;
  updated_at: number;
  password_changed_at: number | null;
  /** Set when sign-in failures reached the hard limit; lifted by a password reset. */
  locked_at: number | null;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  secret_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
  device: string | null;
  /** How the session was established: password, password+totp, passkey, reset... */
  auth_method: string;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export interface EmailVerificationsTable {
  id: string;
  user_id: string;
  secret_hash: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

export interface SecurityEventsTable {
  id: string;
  user_id: string | null;
  type: string;
  at: number;
  ip: string | null;
  device: string | null;
  request_id: string | null;
  /** JSON object with event-specific, non-secret details. */
  data: string;
}

export interface OperatorsTable {
  id: string;
  name: string;
  secret_hash: string;
  created_at: number;
  revoked_at: number | null;
}

export interface OutboxTable {
  id: string;
  type: string;
  channel: string;
  lane: string;
  user_id: string | null;
  recipient: string;
  idempotency_key: string;
  cause_kind: string;
  cause_id: string;
  cause_ip: string | null;
  /** JSON template data without secrets. */
  payload: string;
  /** SecretBox-sealed JSON with the secret part (e.g. a token link); wiped after delivery. */
  sealed: string | null;
  state: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  held_reason: string | null;
  claimed_by: string | null;
  claimed_until: number | null;
  created_at: number;
  updated_at: number;
  sent_at: number | null;
}

export interface OutboxAttemptsTable {
  id: string;
  message_id: string;
  at: number;
  ok: number;
  error: string | null;
  duration_ms: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  email_verifications: EmailVerificationsTable;
  security_events: SecurityEventsTable;
  operators: OperatorsTable;
  outbox: OutboxTable;
  outbox_attempts: OutboxAttemptsTable;
}

/** A connection or an open transaction: stores take either, so callers choose the transaction. */
export type Db = Kysely<Database> | Transaction<Database>;
