/** Helpers for the courier suites: a DKIM key pair, a mailauth resolver for it, and enqueue shortcuts. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cause } from '../../src/kernel/context.js';
import type { Db } from '../../src/storage/schema.js';
import type { Outbox, OutboundMessage } from '../../src/modules/notifications/index.js';

export interface DkimFixture {
  keyFile: string;
  privatePem: string;
  publicB64: string;
  /** dns.resolve-shaped resolver for mailauth's dkimVerify. */
  resolver: (name: string, type: string) => Promise<string[][]>;
}

export function dkimFixture(dir: string, domain = 'example.test', selector = 'test'): DkimFixture {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const keyFile = join(dir, `dkim-${randomBytes(4).toString('hex')}.pem`);
  writeFileSync(keyFile, privatePem, { mode: 0o600 });
  const publicB64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const resolver = async (name: string, type: string) => {
    if (type === 'TXT' && name === `${selector}._domainkey.${domain}`) return [[`v=DKIM1; k=rsa; p=${publicB64}`]];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  return { keyFile, privatePem, publicB64, resolver };
}

let seq = 0;
export const jobCause = (label = 'test'): Cause => ({ kind: 'job', jobId: `${label}-${++seq}-${randomBytes(3).toString('hex')}` });

export function enqueueMail(outbox: Outbox, db: Db, type: OutboundMessage['type'], to: string, data: Record<string, unknown>, extra: Partial<OutboundMessage> = {}) {
  return outbox.enqueue(db, { type, channel: 'email', userId: null, recipient: to, cause: jobCause(type), data, ...extra });
}

export const AT = '2026-01-15T12:00:00.000Z';
