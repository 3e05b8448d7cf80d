export { SecurityEvents, type SecurityEvent, type SecurityEventType } from './security-events.js';
export { Incidents, AuditLog, classify, type Classification, type Evidence, type IncidentView } from './incidents.js';
