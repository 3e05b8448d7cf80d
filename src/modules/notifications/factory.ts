/** Builds the courier and its channels from the configuration (called by main.ts and the CLI). */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../kernel/clock.js';
import type { SecretBox } from '../../kernel/crypto.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { Storage } from '../../storage/database.js';
import { DevMailboxChannel } from './channels/dev-mailbox.js';
import { InboxChannel } from './channels/inbox.js';
import { loadDkimKey, SmtpChannel } from './channels/smtp.js';
import { WebhookChannel } from './channels/webhook.js';
import { Courier, type CourierOptions } from './courier.js';
import type { Outbox } from './outbox.js';
import type { Channel, DeliveryGate } from './ports.js';

export interface CourierDeps {
  config: Config;
  storage: Storage;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  outbox: Outbox;
  box: SecretBox;
  gate?: DeliveryGate;
  /** Tuning for tests and the bench (batch size, backoff, lease...). */
  tuning?: Partial<Pick<CourierOptions, 'batchSize' | 'concurrency' | 'leaseMs' | 'pollIntervalMs' | 'maxAttempts' | 'backoffBaseMs' | 'backoffCapMs' | 'random' | 'workerId'>>;
}

const counted = new WeakSet<Outbox>();

/** Throws a clear Error when the DKIM key cannot be used (a boot error). */
export function createCourier(d: CourierDeps): Courier {
  const { config } = d;
  if (!counted.has(d.outbox)) {
    counted.add(d.outbox);
    // Counted when written (inside the caller's transaction: a rolled-back cause over-counts by one).
    d.outbox.onEnqueued((e) => {
      d.metrics.messages.inc({ type: e.type, channel: e.channel, event: 'queued' });
      if (e.held) d.metrics.messages.inc({ type: e.type, channel: e.channel, event: 'held' });
    });
  }
  // Read once, here: a missing or unusable key stops the boot instead of sending unsigned mail.
  const dkim = loadDkimKey(config.dkim);
  let email: Channel;
  if (config.smtpUrl) {
    email = new SmtpChannel({ url: config.smtpUrl, from: config.mailFrom, clock: d.clock, dkim });
  } else {
    email = new DevMailboxChannel(d.storage.db, d.box, d.clock);
    if (config.production && !config.devMailbox) d.logger.warn('FLOODGATE_SMTP_URL is not set: email is kept in the dev mailbox table and nobody receives it');
  }
  const channels: CourierOptions['channels'] = { email, inbox: new InboxChannel(d.storage.db, d.clock) };
  if (config.webhook) channels.webhook = new WebhookChannel({ url: config.webhook.url, secret: config.webhook.secret, clock: d.clock });
  return new Courier({
    db: d.storage.db,
    dialect: d.storage.dialect,
    clock: d.clock,
    logger: d.logger.child({ component: 'courier' }),
    metrics: d.metrics,
    outbox: d.outbox,
    publicUrl: config.publicUrl,
    channels,
    ...(d.gate ? { gate: d.gate } : {}),
    ...d.tuning,
  });
}
