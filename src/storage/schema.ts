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

export interface RecoveryFlowsTable {
  id: string;
  user_id: string;
  /** 'link' (later also a 6-digit code). */
  strategy: string;
  /** issued | used | denied | superseded | expired (see modules/recovery/flow.ts). */
  state: string;
  issued_at: number;
  expires_at: number;
  token_id: string;
  /** sha256 of the reset token's secret; the token itself is never stored. */
  token_hash: string;
  deny_token_id: string;
  deny_token_hash: string;
  send_count: number;
  last_sent_at: number | null;
  otp_failures: number;
  ended_at: number | null;
  end_reason: string | null;
  request_id: string | null;
  request_ip: string | null;
  updated_at: number;
}

export interface RecoveryAccountsTable {
  user_id: string;
  /** Reset mail stays quiet until then (after "I didn't request this"). */
  quiet_until: number | null;
  updated_at: number;
}

/** Anonymous reset requests, answered at once and decided by the intake worker. */
export interface ResetIntakeTable {
  id: string;
  email_normalized: string;
  ip: string | null;
  request_id: string;
  user_agent: string | null;
  /** Set when the request came with a session (the owner may lift a quiet period). */
  requester_user_id: string | null;
  at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  attempts: number;
  /** 1 when the request carried a solved proof-of-work challenge. */
  solved: number;
  /** 0 to decide, 1 kept for an operator (guard in hold), 2 released by an operator. */
  held: number;
}

/** MFA module: one TOTP factor per account (pending until confirmed); the seed is SecretBox-sealed (aad = row id). */
export interface MfaTotpTable {
  id: string;
  user_id: string;
  secret_sealed: string;
  /** pending | active */
  state: string;
  created_at: number;
  confirmed_at: number | null;
  /** Highest TOTP time step accepted so far: steps <= it are refused (replay). */
  last_used_step: number | null;
}

/** MFA module: single-use recovery codes, stored only as SHA-256(userId:code). */
export interface MfaRecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  created_at: number;
  used_at: number | null;
}

/** MFA module: WebAuthn credentials (public keys only). */
export interface MfaPasskeysTable {
  id: string;
  user_id: string;
  /** base64url credential id, unique across accounts. */
  credential_id: string;
  /** base64url COSE public key. */
  public_key: string;
  counter: number;
  /** JSON array of transports. */
  transports: string;
  name: string;
  device_type: string;
  backed_up: number;
  aaguid: string;
  created_at: number;
  last_used_at: number | null;
}

/** MFA module: WebAuthn challenges, single use, 5-minute expiry (only sha256 of the challenge). */
export interface MfaChallengesTable {
  id: string;
  challenge_hash: string;
  /** register | authenticate */
  purpose: string;
  user_id: string | null;
  session_id: string | null;
  created_at: number;
  expires_at: number;
}

/** Courier: messages the dev mailbox channel kept (text and html SecretBox-sealed, aad = id). */
export interface DevMailboxTable {
  /** The outbox row id: one message per row, however often it is delivered. */
  id: string;
  recipient: string;
  subject: string;
  text: string;
  html: string;
  created_at: number;
}

/** Courier: the in-app inbox (no secrets: messages for it are rendered without their secret part). */
export interface InboxTable {
  /** The outbox row id: one entry per row, however often it is delivered. */
  id: string;
  user_id: string;
  type: string;
  title: string;
  body: string;
  /** JSON: the row's non-secret template data. */
  data: string;
  created_at: number;
  read_at: number | null;
}

export interface BreakersTable {
  /** `<message type>:<cause kind>`, e.g. `password_reset:anonymous`. */
  name: string;
  state: string;
  reason: string | null;
  tripped_by: string | null;
  tripped_at: number | null;
  updated_at: number;
}

export interface KillSwitchesTable {
  /** `type:<message type>` or `flow:<flow>`. */
  name: string;
  /** pause | inbox_only */
  action: string;
  reason: string;
  set_by: string;
  set_at: number;
}

export interface IncidentsTable {
  id: string;
  /** Deduplication key: one open incident per key. */
  key: string;
  kind: string;
  title: string;
  state: string;
  classification: string;
  opened_at: number;
  last_seen_at: number;
  closed_at: number | null;
  data: string;
}

export interface AuditLogTable {
  id: string;
  at: number;
  operator_id: string;
  operator_name: string;
  action: string;
  target: string;
  reason: string;
  data: string;
}

export interface BroadcastsTable {
  id: string;
  subject: string;
  text: string;
  audience: string;
  state: string;
  recipients: number;
  created_by: string;
  /** The creating operator's id (null before migration 0009). */
  created_by_id: string | null;
  created_at: number;
  /** Who released it (the approvers' names), once released. */
  approved_by: string | null;
  approved_at: number | null;
}

/** One row per operator who approved a broadcast held by the blast radius. */
export interface BroadcastApprovalsTable {
  broadcast_id: string;
  operator_id: string;
  operator_name: string;
  approved_at: number;
}

export interface CauseApprovalsTable {
  cause_id: string;
  approved_by: string;
  approved_at: number;
}

export interface StatusNoticesTable {
  id: string;
  title: string;
  body: string;
  severity: string;
  published_at: number;
  resolved_at: number | null;
  created_by: string;
}

/** Console: accounts granted the operator role (`floodgate operators grant EMAIL`). */
export interface ConsoleOperatorsTable {
  user_id: string;
  granted_by: string;
  granted_at: number;
  revoked_by: string | null;
  revoked_at: number | null;
}

/** Console: operator sessions (cookie floodgate_console); only sha256 of the secret is stored. */
export interface ConsoleSessionsTable {
  id: string;
  user_id: string;
  secret_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
  /** password+totp | password+recovery_code */
  auth_method: string;
  revoked_at: number | null;
}

/** New-sign-in notices: the "this wasn't me" token of each (only sha256 of its secret); single use, 7 days. */
export interface SigninNoticesTable {
  /** The token's id part. */
  id: string;
  user_id: string;
  /** The session the token may revoke. */
  session_id: string;
  secret_hash: string;
  created_at: number;
  expires_at: number;
}

/** Protective notices the delivery gate folded into the in-app inbox, and the digest that listed them. */
export interface NoticeFoldsTable {
  outbox_id: string;
  user_id: string;
  type: string;
  /** UTC date (YYYY-MM-DD) of the fold. */
  day: string;
  folded_at: number;
  /** The digest's outbox row id, once queued. */
  digest_id: string | null;
}

/** Device cookies: a browser an account signed in from (sessions module, `devices.ts`). */
export interface DevicesTable {
  /** The cookie token's id part. */
  id: string;
  user_id: string;
  secret_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

export interface Database {
  breakers: BreakersTable;
  kill_switches: KillSwitchesTable;
  incidents: IncidentsTable;
  audit_log: AuditLogTable;
  broadcasts: BroadcastsTable;
  broadcast_approvals: BroadcastApprovalsTable;
  cause_approvals: CauseApprovalsTable;
  status_notices: StatusNoticesTable;
  users: UsersTable;
  sessions: SessionsTable;
  email_verifications: EmailVerificationsTable;
  security_events: SecurityEventsTable;
  operators: OperatorsTable;
  outbox: OutboxTable;
  outbox_attempts: OutboxAttemptsTable;
  dev_mailbox: DevMailboxTable;
  inbox: InboxTable;
  recovery_flows: RecoveryFlowsTable;
  recovery_accounts: RecoveryAccountsTable;
  reset_intake: ResetIntakeTable;
  mfa_totp: MfaTotpTable;
  mfa_recovery_codes: MfaRecoveryCodesTable;
  mfa_passkeys: MfaPasskeysTable;
  mfa_challenges: MfaChallengesTable;
  console_operators: ConsoleOperatorsTable;
  console_sessions: ConsoleSessionsTable;
  signin_notices: SigninNoticesTable;
  notice_folds: NoticeFoldsTable;
  devices: DevicesTable;
}

/** A connection or an open transaction: stores take either, so callers choose the transaction. */
export type Db = Kysely<Database> | Transaction<Database>;
