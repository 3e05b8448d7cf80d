export { Outbox, type OutboundMessage, type EnqueueResult } from './outbox.js';
export { MESSAGE_TYPES, laneOf, type MessageType, type Channel, type Lane, type MessageState } from './model.js';
