export { RecoveryService, type RecoveryDeps, type ConfirmInput, type IntakeDecision } from './service.js';
export { ResetIntakeWorker, type IntakeDeps, type IntakeReport } from './intake.js';
export { RECOVERY_LIMITS, sourceKey, type RecoveryLimits } from './limits.js';
export { linkStrategy, noResetPrompt, type RecoveryStrategy, type ResetPromptPolicy, type MintedSecret } from './ports.js';
export { FLOW_STATES, MAX_TTL_MS, decideRequest, effectiveState, isLive, issue, transition, type FlowState, type FlowStrategy, type RecoveryFlow, type FlowEvent, type Effect, type RequestDecision } from './flow.js';
export { recoveryRoutes } from './routes.js';
export { recoveryPages } from './pages.js';
