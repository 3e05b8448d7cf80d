/** The wired services that main.ts builds and the HTTP layer and CLI use. */
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { Clock } from './kernel/clock.js';
import type { SecretBox } from './kernel/crypto.js';
import type { Metrics } from './kernel/metrics.js';
import type { Storage } from './storage/database.js';
import type { AccountsService, PasswordHasher } from './modules/accounts/index.js';
import type { AuditLog, Incidents, SecurityEvents } from './modules/incidents/index.js';
import type { Courier, DigestWorker, Outbox } from './modules/notifications/index.js';
import type { OperatorsService } from './modules/operators/index.js';
import type { NotMeService, SecondFactor, SessionsService, SignInFlow } from './modules/sessions/index.js';
import type { MfaModule } from './modules/mfa/index.js';
import type { Broadcasts, ChallengeService, Guard, GuardStore, OutboundGuard, RateLimiter } from './modules/guard/index.js';
import type { RecoveryService, ResetIntakeWorker } from './modules/recovery/index.js';

/** A loop that runs beside the HTTP server (courier, reset intake...): started by serve, stopped on shutdown. */
export interface BackgroundWorker {
  readonly name: string;
  start(): void;
  /** Finish the current batch, then stop. */
  stop(): Promise<void>;
}

export interface Services {
  config: Config;
  clock: Clock;
  logger: Logger;
  storage: Storage;
  metrics: Metrics;
  box: SecretBox;
  events: SecurityEvents;
  outbox: Outbox;
  hasher: PasswordHasher;
  accounts: AccountsService;
  sessions: SessionsService;
  signIn: SignInFlow;
  operators: OperatorsService;
  /** Shared counters: in-process, or Redis when FLOODGATE_REDIS_URL is set. */
  limiter: RateLimiter;
  /** The second factor (MFA module); required by sign-in and by password reset. */
  secondFactor: SecondFactor;
  /** TOTP, recovery codes, passkeys and password change (the MFA module). */
  mfa: MfaModule;
  /** Counters, sketches and shared flags of the guard (the limiter above is the same store). */
  guardStore: GuardStore;
  guard: Guard;
  challenges: ChallengeService;
  /** Breakers, kill switches and the blast radius on the courier (its DeliveryGate). */
  outbound: OutboundGuard;
  broadcasts: Broadcasts;
  incidents: Incidents;
  audit: AuditLog;
  /** Wake the courier after releasing held mail (no-op when it runs elsewhere). */
  courierWake?: () => void;
  /** Password recovery (request, confirm, deny) and the worker that decides reset requests. */
  recovery: RecoveryService;
  resetIntake: ResetIntakeWorker;
  /** Delivers the outbox; in `workers` only when FLOODGATE_COURIER=in-process (tests call pollOnce/drain). */
  courier: Courier;
  /** Background loops; createFloodgate starts them when asked (serve), tests drive them directly. */
  workers: BackgroundWorker[];
  /** "This wasn't me" on new-sign-in notices: revoke that session, start a reset. */
  notMe: NotMeService;
  /** Queues one digest per account and day of folded protective notices (in `workers`; tests call runOnce). */
  digests: DigestWorker;
}
