export { MemoryRateLimiter, BoundedLru, type RateLimiter, type LimitRule, type LimitResult } from './limiter.js';
export { MemoryGuardStore, RedisGuardStore, type GuardStore } from './store.js';
export { HyperLogLog, SpaceSaving, networkOf } from './sketch.js';
export { ChallengeService, CHALLENGE_TTL_MS } from './challenge.js';
export { Guard, FLOWS, SOURCE_LIMITS, type Flow, type Decision, type FlowView, type ModeChange } from './guard.js';
export { DEFAULT_POLICY, type Mode, type DetectorPolicy } from './detector.js';
export { GuardSignInThrottle, delayAfter, FREE_FAILURES, LOCK_AFTER } from './signin-throttle.js';
