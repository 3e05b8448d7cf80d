/** A real SMTP server (smtp-server) that keeps every message it receives, parsed (mailparser). */
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';

export interface ReceivedMail {
  raw: Buffer;
  parsed: ParsedMail;
  to: string[];
  at: number;
}

export interface SmtpSink {
  url: string;
  port: number;
  messages: ReceivedMail[];
  to(addr: string): ReceivedMail[];
  /** Fail the next n deliveries with a 451 (temporary) answer. */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** delayMs: answer each message that much later, as a busy mail server would. */
export async function startSmtpSink(opts: { delayMs?: number } = {}): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  let failures = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    // Pooled clients (the courier) keep connections open: do not wait 30 s for them on close.
    closeTimeout: 1000,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        if (failures > 0) {
          failures--;
          const err = Object.assign(new Error('try again later'), { responseCode: 451 });
          return cb(err);
        }
        const raw = Buffer.concat(chunks);
        const parsed = await simpleParser(raw);
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
        messages.push({ raw, parsed, to: (session.envelope.rcptTo || []).map((r) => r.address.toLowerCase()), at: Date.now() });
        cb();
      });
    },
  });
  // A client killed mid-session (the crash tests SIGKILL couriers) resets its connection: that is
  // the client's failure, not the sink's; anything else is still thrown.
  server.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') throw e;
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`, port, messages,
    to: (addr) => messages.filter((m) => m.to.includes(addr.toLowerCase())),
    failNext: (n) => { failures = n; },
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

/** All http(s) links in a mail's text and HTML parts. */
export function linksOf(m: ReceivedMail): string[] {
  const html = typeof m.parsed.html === 'string' ? m.parsed.html : '';
  const text = `${m.parsed.text ?? ''}\n${html}`;
  return [...new Set((text.match(/https?:\/\/[^\s"'<>)]+/g) ?? []).map((u) => u.replace(/&amp;/g, '&').replace(/[.,;:!?\]]+$/, '')))];
}

export async function waitFor<T>(fn: () => T | Promise<T>, ms = 10_000, step = 25): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`waitFor: condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, step));
  }
}
