/** Message types, channels, lanes and states of the outbox. */
export const MESSAGE_TYPES = [
  'verify_email',
  'signup_existing',
  'password_reset',
  'password_changed',
  'reset_prompt',
  'new_signin',
  'second_factor_failed',
  'mfa_changed',
  'email_changed',
  'broadcast',
  'digest',
  'operator_alert',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export type Channel = 'email' | 'inbox' | 'webhook';

/**
 * Notices that protect the user travel the priority lane with their own budget, so a flood of
 * reset requests can never delay or silence them (DESIGN: "Priority lanes").
 */
export type Lane = 'priority' | 'normal' | 'bulk';

const PRIORITY: ReadonlySet<MessageType> = new Set(['password_changed', 'new_signin', 'second_factor_failed', 'mfa_changed', 'email_changed']);

export function laneOf(type: MessageType): Lane {
  if (PRIORITY.has(type)) return 'priority';
  if (type === 'broadcast' || type === 'digest') return 'bulk';
  return 'normal';
}

export type MessageState = 'queued' | 'sending' | 'sent' | 'failed' | 'held' | 'discarded';
