/**
 * Email over SMTP (nodemailer, pooled). Invariants:
 * - DKIM fails closed: nodemailer sends unsigned mail when signing fails, silently, so we build
 *   the raw message ourselves (MailComposer), sign it (nodemailer's DKIM signer), check that a
 *   DKIM-Signature header is in the bytes, and only then hand the exact bytes to SMTP; otherwise
 *   the row is held ('dkim signing failed'), never sent unsigned;
 * - the key is read and checked once, at start: a missing or unusable key stops the boot;
 * - the envelope recipient is the row's recipient only, checked to be a plain address (no header
 *   injection); the Message-ID is derived from the row id on the sender's domain, so a rare
 *   resend after a crash carries the same Message-ID and receivers can fold the two.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nodemailer, { type Transporter } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import DKIM from 'nodemailer/lib/dkim/index.js';
import type { Clock } from '../../../kernel/clock.js';
import { isPlausibleEmail } from '../../../kernel/email.js';
import { DeliveryError, type Channel, type DeliveryRow } from '../ports.js';
import type { Rendered } from '../templates.js';

export interface DkimKey {
  domainName: string;
  keySelector: string;
  /** PEM. */
  privateKey: string;
}

/**
 * Read and check the DKIM key named by the configuration. Throws an Error whose message names
 * the variable and the problem (the CLI prints it and exits).
 */
export function loadDkimKey(dkim: { domain: string; selector: string; keyFile: string } | null): DkimKey | null {
  if (!dkim) return null;
  let pem: string;
  try {
    pem = readFileSync(dkim.keyFile, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`FLOODGATE_DKIM_KEY_FILE: cannot read ${dkim.keyFile} (${code}); mail would go out unsigned, so Floodgate does not start`);
  }
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    throw new Error(`FLOODGATE_DKIM_KEY_FILE: ${dkim.keyFile} does not hold a PEM private key (unencrypted PKCS#1 or PKCS#8)`);
  }
  // nodemailer writes a=rsa-sha256: any other key type would sign wrongly or not at all.
  if (type !== 'rsa') throw new Error(`FLOODGATE_DKIM_KEY_FILE: ${dkim.keyFile} holds a ${type} key; DKIM signing needs an RSA key (2048 bits or more)`);
  return { domainName: dkim.domain, keySelector: dkim.selector, privateKey: pem };
}

export interface SmtpChannelOptions {
  url: string;
  /** `Name <user@domain>` or `user@domain`. */
  from: string;
  clock: Clock;
  dkim: DkimKey | null;
  maxConnections?: number;
}

/** The bare address and its domain out of `Name <user@domain>`. */
export function senderOf(from: string): { address: string; domain: string } {
  const m = /<([^<>\s]+@[^<>\s]+)>/.exec(from);
  const address = (m ? m[1]! : from).trim();
  return { address, domain: address.slice(address.lastIndexOf('@') + 1).toLowerCase() };
}

/** True when the header block of `raw` holds a DKIM-Signature field. */
export function hasDkimSignature(raw: Buffer): boolean {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1');
  return /^DKIM-Signature:[ \t]*\S/im.test(head);
}

function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

export class SmtpChannel implements Channel {
  readonly name = 'smtp';
  private transport: Transporter | null = null;
  private readonly signer: DKIM | null;
  private readonly sender: { address: string; domain: string };

  constructor(private readonly o: SmtpChannelOptions) {
    this.sender = senderOf(o.from);
    this.signer = o.dkim ? new DKIM({ domainName: o.dkim.domainName, keySelector: o.dkim.keySelector, privateKey: o.dkim.privateKey }) : null;
  }

  private pool(): Transporter {
    if (this.transport) return this.transport;
    const u = new URL(this.o.url);
    const secure = u.protocol === 'smtps:';
    this.transport = nodemailer.createTransport({
      pool: true,
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : secure ? 465 : 587,
      secure,
      ...(u.username ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } } : {}),
      maxConnections: this.o.maxConnections ?? 5,
      maxMessages: 1000,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    return this.transport;
  }

  /** The message as it goes on the wire: composed, and signed when DKIM is configured. */
  async build(r: Rendered, row: DeliveryRow): Promise<Buffer> {
    const raw = await new MailComposer({
      from: this.o.from,
      to: row.recipient,
      subject: r.subject,
      text: r.text,
      html: r.html,
      messageId: `<${row.id}@${this.sender.domain}>`,
      date: new Date(this.o.clock.now()),
      headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
    })
      .compile()
      .build();
    if (!this.signer) return raw;
    let signed: Buffer;
    try {
      signed = await streamToBuffer(this.signer.sign(raw));
    } catch {
      throw new DeliveryError('dkim signing failed', 'hold');
    }
    // Fail closed: the signer returns the message unsigned when the key cannot sign.
    if (!hasDkimSignature(signed)) throw new DeliveryError('dkim signing failed', 'hold');
    return signed;
  }

  async send(r: Rendered, row: DeliveryRow): Promise<void> {
    if (!isPlausibleEmail(row.recipient.toLowerCase())) throw new DeliveryError('smtp: the recipient is not a plain email address', 'fail');
    const raw = await this.build(r, row);
    try {
      await this.pool().sendMail({ envelope: { from: this.sender.address, to: [row.recipient] }, raw });
    } catch (e) {
      const err = e as { code?: string; responseCode?: number; command?: string; response?: string; message?: string };
      const what = `smtp: ${[err.code, err.responseCode, err.command].filter(Boolean).join(' ')} ${(err.response ?? err.message ?? '').slice(0, 300)}`.trim();
      // A recipient the server refuses for good will not be accepted on the next try.
      const permanent = err.command === 'RCPT TO' && typeof err.responseCode === 'number' && err.responseCode >= 500;
      throw new DeliveryError(what, permanent ? 'fail' : 'retry');
    }
  }

  async close(): Promise<void> {
    this.transport?.close();
    this.transport = null;
  }
}
