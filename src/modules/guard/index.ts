export { MemoryRateLimiter, BoundedLru, type RateLimiter, type LimitRule, type LimitResult } from './limiter.js';
