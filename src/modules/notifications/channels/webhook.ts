/**
 * Operator webhook: a signed JSON POST to FLOODGATE_WEBHOOK_URL. Invariants:
 * - only the configured URL is ever called (a row cannot name another one: no SSRF through data);
 * - redirects are not followed, the call times out after 5 s, and any non-2xx answer is a
 *   failure that is retried with backoff;
 * - the signature is Stripe-style: `X-Floodgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
 *   of "t.body">`, so a receiver can check both integrity and freshness (verifyWebhookSignature);
 * - the body carries the rendered notice and the row's non-secret data, never its sealed part.
 */
import type { Clock } from '../../../kernel/clock.js';
import { constantTimeEqual, hmacSha256Hex } from '../../../kernel/crypto.js';
import { DeliveryError, type Channel, type DeliveryRow } from '../ports.js';
import type { Rendered } from '../templates.js';

export const WEBHOOK_SIGNATURE_HEADER = 'x-floodgate-signature';

export interface WebhookChannelOptions {
  url: string;
  secret: string;
  clock: Clock;
  timeoutMs?: number;
}

export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${hmacSha256Hex(secret, `${unixSeconds}.${body}`)}`;
}

/**
 * What a receiver does: parse the header, recompute the HMAC over "t.body" with the raw body,
 * compare in constant time, and refuse timestamps older (or newer) than the tolerance.
 */
export function verifyWebhookSignature(secret: string, header: string | undefined, body: string, nowUnixSeconds: number, toleranceSeconds = 300): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const; }));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isSafeInteger(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(nowUnixSeconds - t) > toleranceSeconds) return false;
  return constantTimeEqual(v1, hmacSha256Hex(secret, `${t}.${body}`));
}

export class WebhookChannel implements Channel {
  readonly name = 'webhook';
  constructor(private readonly o: WebhookChannelOptions) {}

  async send(r: Rendered, row: DeliveryRow): Promise<void> {
    let data: unknown = {};
    try {
      data = JSON.parse(row.payload);
    } catch { /* stored by us as JSON */ }
    const body = JSON.stringify({ id: row.id, type: row.type, createdAt: new Date(Number(row.created_at)).toISOString(), subject: r.subject, text: r.body, data });
    const t = Math.floor(this.o.clock.now() / 1000);
    let res: Response;
    try {
      res = await fetch(this.o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Floodgate-Webhook/1', [WEBHOOK_SIGNATURE_HEADER]: signWebhook(this.o.secret, body, t), 'x-floodgate-delivery': row.id },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw new DeliveryError(`webhook: ${err.name === 'TimeoutError' ? 'no answer within the timeout' : `${err.cause?.code ?? err.name}: ${err.message}`}`.slice(0, 300), 'retry');
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status >= 300) throw new DeliveryError(`webhook: the endpoint answered ${res.status}`, 'retry');
  }
}
