/**
 * The console's live feed: every 2 s one Server-Sent Event with what changed since the last one
 * (reset requests reaching the guard, failed sign-ins, mail queued / sent / held per type, from
 * this instance's Prometheus counters) and the guard's shared view per flow (mode, pressure,
 * unknown-email share, top sources and networks: shared across instances through the guard
 * store). Invariants: bounded (a cap on open streams; each holds one timer and one snapshot),
 * every stream ends when its console session ends or the server closes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../../http/app.js';
import { FLOWS } from '../../modules/guard/index.js';
import type { Services } from '../../services.js';
import { readCookie } from '../../http/cookies.js';
import { type ConsoleAccess } from './access.js';

export const TICK_MS = 2000;
const MAX_STREAMS = 32;
/** How often an open stream re-checks its console session. */
const RECHECK_MS = 30_000;

type MailCounts = { queued: number; sent: number; held: number };

export interface FlowLive {
  flow: string;
  mode: string;
  override: string | null;
  pressure: number;
  requests: number;
  sources: number;
  targets: number;
  unknownShare: number | null;
  topSources: { item: string; count: number }[];
  topNetworks: { item: string; count: number }[];
}

export interface LiveSample {
  /** Epoch ms of the sample. */
  t: number;
  /** Since the previous sample (0 in the first one). */
  resetRequests: number;
  signinFailures: number;
  mail: MailCounts;
  mailByType: Record<string, MailCounts>;
  /** Messages held now (outbox), and reset requests kept for an operator. */
  held: number;
  heldRequests: number;
  flows: FlowLive[];
}

interface Totals {
  reset: number;
  signinFailed: number;
  mail: Map<string, MailCounts>;
}

const MAIL_EVENTS = ['queued', 'sent', 'held'] as const;

async function totals(s: Services): Promise<Totals> {
  const [guard, signins, messages] = await Promise.all([s.metrics.guardDecisions.get(), s.metrics.signIns.get(), s.metrics.messages.get()]);
  const reset = guard.values.filter((v) => v.labels.flow === 'reset').reduce((n, v) => n + v.value, 0);
  const signinFailed = signins.values.filter((v) => v.labels.outcome === 'failed').reduce((n, v) => n + v.value, 0);
  const mail = new Map<string, MailCounts>();
  for (const v of messages.values) {
    const ev = String(v.labels.event);
    if (!(MAIL_EVENTS as readonly string[]).includes(ev)) continue;
    const type = String(v.labels.type);
    const m = mail.get(type) ?? { queued: 0, sent: 0, held: 0 };
    m[ev as keyof MailCounts] += v.value;
    mail.set(type, m);
  }
  return { reset, signinFailed, mail };
}

/** Deltas between two reads of the counters; one per open stream. */
export class LiveSampler {
  private prev: Totals | null = null;
  constructor(private readonly s: Services) {}

  async sample(): Promise<LiveSample> {
    const s = this.s;
    const now = await totals(s);
    const prev = this.prev ?? now;
    this.prev = now;
    const mailByType: Record<string, MailCounts> = {};
    const mail: MailCounts = { queued: 0, sent: 0, held: 0 };
    for (const [type, c] of now.mail) {
      const p = prev.mail.get(type) ?? { queued: 0, sent: 0, held: 0 };
      const d = { queued: c.queued - p.queued, sent: c.sent - p.sent, held: c.held - p.held };
      if (d.queued || d.sent || d.held) mailByType[type] = d;
      mail.queued += d.queued;
      mail.sent += d.sent;
      mail.held += d.held;
    }
    const [views, resetShare, heldRow, heldRequests] = await Promise.all([
      Promise.all(FLOWS.map((f) => s.guard.view(f))),
      s.guard.unknownShare('reset'),
      s.storage.db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('state', '=', 'held').executeTakeFirst(),
      s.recovery.heldCount(),
    ]);
    return {
      t: s.clock.now(),
      resetRequests: now.reset - prev.reset,
      signinFailures: now.signinFailed - prev.signinFailed,
      mail, mailByType,
      held: Number(heldRow?.n ?? 0),
      heldRequests,
      flows: views.map((v) => ({
        flow: v.flow, mode: v.mode, override: v.override, pressure: v.pressure,
        requests: v.current.requests, sources: v.current.sources, targets: v.current.targets,
        unknownShare: v.flow === 'reset' ? resetShare : v.current.resolved >= 10 ? v.current.unknown / v.current.resolved : null,
        topSources: v.topSources.slice(0, 5), topNetworks: v.topNetworks.slice(0, 5),
      })),
    };
  }
}

export async function liveRoutes(app: App, s: Services, access: ConsoleAccess): Promise<void> {
  const open = new Set<() => void>();
  // Open streams would hold the server open forever: end them before it stops listening.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get('/console/events', { schema: { tags: ['console'], summary: 'Console: live figures as Server-Sent Events (one `sample` event every 2 s)' } }, async (req: FastifyRequest, reply: FastifyReply) => {
    // The feed is not activity: an open overview must not keep an unattended console signed in.
    const u = await access.authenticate(readCookie(req, 'console'), { touch: false });
    if (!u) return reply.code(401).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('Sign in to the console first.\n');
    if (open.size >= MAX_STREAMS) return reply.code(503).header('retry-after', '10').type('text/plain; charset=utf-8').send('Too many live views are open.\n');
    const sampler = new LiveSampler(s);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
    let busy = false;
    let lastCheck = Date.now();
    const push = async () => {
      if (busy) return; // a slow sample skips a tick rather than piling up
      busy = true;
      try {
        if (Date.now() - lastCheck >= RECHECK_MS) {
          lastCheck = Date.now();
          if (!(await access.authenticate(readCookie(req, 'console'), { touch: false }))) return end();
        }
        const sample = await sampler.sample();
        res.write(`event: sample\ndata: ${JSON.stringify(sample)}\n\n`);
      } catch (e) {
        req.log.warn({ err: e }, 'console live sample failed');
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void push(), TICK_MS);
    const end = () => {
      clearInterval(timer);
      open.delete(end);
      if (!res.writableEnded) res.end();
    };
    open.add(end);
    req.raw.on('close', end);
    res.write(`retry: 5000\n\n`);
    await push();
  });
}

