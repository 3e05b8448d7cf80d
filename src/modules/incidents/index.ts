export { SecurityEvents, type SecurityEvent, type SecurityEventType } from './security-events.js';
