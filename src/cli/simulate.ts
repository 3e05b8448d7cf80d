/**
 * `floodgate simulate SCENARIO --target URL`: drives a running Floodgate the way an attacker
 * (or a buggy job) would, while real users go about their business, and reports what reached
 * inboxes. It is also the guard's benchmark. Traffic goes only to the target URL, is bounded in
 * count and time, and stops by itself.
 *
 * Mail is observed through an SMTP sink the simulator runs (--smtp-listen PORT; start the target
 * with FLOODGATE_SMTP_URL=smtp://127.0.0.1:PORT), or through the target's dev mailbox API.
 * Address rotation needs the target to believe X-Forwarded-For from loopback
 * (FLOODGATE_TRUST_PROXY=loopback), as it would behind a proxy.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { solveChallenge, type Challenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';

export const SCENARIOS = ['reset-flood', 'inbox-bomb', 'bulk-bug', 'credential-stuffing'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface SimulateOptions {
  scenario: Scenario;
  target: string;
  adminToken: string;
  durationS: number;
  concurrency: number;
  maxRequests: number;
  accounts: number;
  realUsers: number;
  smtpListen: number | null;
  out: string | null;
  quiet: boolean;
}

interface Sample {
  t: number;
  requests: number;
  mails: number;
  mode: string;
  rssMb: number | null;
}

export interface Report {
  scenario: Scenario;
  figures: Record<string, string | number>;
  goals: { goal: string; met: boolean; value: string }[];
  samples: Sample[];
}

interface Mail {
  to: string;
  subject: string;
  at: number;
}

/** Collects the mail the target sends: an SMTP sink of our own, or the dev mailbox API. */
class MailObserver {
  readonly mails: Mail[] = [];
  private server: { close(cb: () => void): void } | null = null;
  private seen = new Set<string>();
  constructor(private readonly target: string) {}

  async listen(port: number): Promise<void> {
    const { SMTPServer } = await import('smtp-server');
    const server = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'], logger: false, size: 1024 * 1024, closeTimeout: 1000,
      onData: (stream, session, cb) => {
        let head = '';
        stream.on('data', (c: Buffer) => { if (head.length < 8192) head += c.toString('latin1'); });
        stream.on('end', () => {
          const subject = /^subject:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? '';
          for (const r of session.envelope.rcptTo) this.mails.push({ to: r.address.toLowerCase(), subject, at: Date.now() });
          cb();
        });
      },
    });
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(port, '127.0.0.1', () => res()); });
    server.on('error', () => { /* a client resetting its connection is not the sink's failure */ });
    this.server = server;
  }

  /** Poll the dev mailbox (when the target has no SMTP URL). */
  async poll(): Promise<void> {
    if (this.server) return;
    const r = await request(this.target, 'GET', '/api/v1/dev/mailbox?limit=500').catch(() => null);
    const list = (r?.json as { messages?: { id: string; to: string; subject: string }[] } | null)?.messages ?? [];
    for (const m of list) if (!this.seen.has(m.id)) { this.seen.add(m.id); this.mails.push({ to: m.to.toLowerCase(), subject: m.subject, at: Date.now() }); }
  }

  to(addr: string): Mail[] {
    return this.mails.filter((m) => m.to === addr.toLowerCase());
  }

  close(): Promise<void> {
    return new Promise((res) => (this.server ? this.server.close(() => res()) : res()));
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

interface Answer {
  status: number;
  ms: number;
  json: unknown;
}

function request(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, parse = true): Promise<Answer> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(url, { method, agent, headers: { ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...headers } }, (res) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => { if (parse) chunks.push(c); });
      res.on('end', () => {
        let json: unknown = null;
        if (parse) try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, ms, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * A random address from the shared address space (100.64.0.0/10): many sources, never routable.
 * Math.random, not the CSPRNG: this is load generation, and its CPU is taken from the target's.
 */
function randomIp(): string {
  const r = (n: number) => Math.floor(Math.random() * n);
  return `100.${64 + r(64)}.${r(256)}.${1 + r(254)}`;
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function solve(challenge: Challenge): Promise<string | null> {
  const solution = await solveChallenge({ challenge, deriveKey, timeout: 60_000 });
  return solution ? Buffer.from(JSON.stringify({ challenge, solution })).toString('base64') : null;
}

export async function simulate(o: SimulateOptions): Promise<Report> {
  const admin = { authorization: `Bearer ${o.adminToken}` };
  const health = await request(o.target, 'GET', '/healthz').catch(() => null);
  if (health?.status !== 200) throw new Error(`no 200 from ${o.target}/healthz: is Floodgate running there?`);
  const mail = new MailObserver(o.target);
  if (o.smtpListen !== null) await mail.listen(o.smtpListen);

  const run = randomBytes(3).toString('hex');
  const accounts = Array.from({ length: o.accounts }, (_, i) => `sim-${run}-${i}@example.test`);
  const realUsers = Array.from({ length: o.realUsers }, (_, i) => `real-${run}-${i}@example.test`);
  const password = `simulated passphrase ${run}`;
  const lines = [...accounts, ...realUsers].map((email) => JSON.stringify({ email, password, emailVerified: true })).join('\n') + '\n';
  const imp = await request(o.target, 'POST', '/api/v1/admin/users/import', lines, { ...admin, 'content-type': 'application/x-ndjson' });
  if (imp.status !== 200) throw new Error(`import of ${accounts.length + realUsers.length} accounts failed: ${imp.status} (check --admin-token)`);

  const samples: Sample[] = [];
  const statuses = new Map<number, number>();
  const latencies: number[] = [];
  let sent = 0;
  let firstEscalationMs: number | null = null;
  const t0 = Date.now();
  const deadline = t0 + o.durationS * 1000;
  let stop = false;

  const progress = (done: number) => {
    if (o.quiet) return;
    const frac = Math.min(1, (Date.now() - t0) / (o.durationS * 1000));
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    const line = `[${bar}] ${Math.round(frac * 100)}%  requests ${done}  mails ${mail.mails.length}  mode ${samples.at(-1)?.mode ?? '?'}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
  };

  const flowFor = o.scenario === 'credential-stuffing' ? 'signin' : 'reset';
  const sampler = (async () => {
    while (!stop) {
      await mail.poll();
      const g = await request(o.target, 'GET', '/api/v1/admin/guard', undefined, admin).catch(() => null);
      const flows = ((g?.json as { flows?: { flow: string; mode: string }[] } | null)?.flows ?? []);
      const mode = flows.find((f) => f.flow === flowFor)?.mode ?? '?';
      if (mode !== 'normal' && mode !== '?' && firstEscalationMs === null) firstEscalationMs = Date.now() - t0;
      samples.push({ t: (Date.now() - t0) / 1000, requests: sent, mails: mail.mails.length, mode, rssMb: await rssOf(o.target) });
      progress(sent);
      await sleep(o.scenario === 'bulk-bug' ? 250 : 1000);
    }
  })();

  const count = (a: Answer) => {
    statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    latencies.push(a.ms);
  };

  const figures: Record<string, string | number> = {};
  const goals: Report['goals'] = [];

  if (o.scenario === 'reset-flood' || o.scenario === 'inbox-bomb') {
    const victims = o.scenario === 'inbox-bomb' ? [accounts[0]!] : accounts;
    const histBefore = await routeHistogram(o.target, 'POST', '/api/v1/password-resets');
    const unknown = (i: number) => `nobody-${run}-${i}@example.test`;
    const attacked = new Set<string>();
    const attackers = Array.from({ length: o.concurrency }, async () => {
      while (!stop && Date.now() < deadline && sent < o.maxRequests) {
        const i = sent++;
        const known = o.scenario === 'inbox-bomb' || i % 2 === 0;
        const email = known ? victims[i % victims.length]! : unknown(i);
        if (known) attacked.add(email);
        const a = await request(o.target, 'POST', '/api/v1/password-resets', { email }, { 'x-forwarded-for': randomIp() }, false).catch(() => ({ status: 0, ms: 0, json: null }));
        count(a);
      }
    });
    // Real users, each from its own address, ask once, spread over the run, and solve a challenge when asked.
    const served: boolean[] = [];
    const unserved: string[] = [];
    const realLatencies: number[] = [];
    const real = realUsers.map(async (email, i) => {
      await sleep(((i + 0.5) / realUsers.length) * o.durationS * 800);
      const ip = randomIp();
      let a = await request(o.target, 'POST', '/api/v1/password-resets', { email }, { 'x-forwarded-for': ip });
      realLatencies.push(a.ms);
      const asked428 = a.status === 428;
      let unsolved = false;
      if (a.status === 428) {
        const altcha = await solve((a.json as { challenge: Challenge }).challenge);
        if (altcha) a = await request(o.target, 'POST', '/api/v1/password-resets', { email, altcha }, { 'x-forwarded-for': ip });
        else unsolved = true;
      }
      const t = Date.now();
      while (Date.now() - t < 30_000 && !mail.to(email).length) { await mail.poll(); await sleep(200); }
      served[i] = a.status === 202 && mail.to(email).length > 0;
      if (!served[i]) unserved.push(unsolved ? 'challenge not solved within 60 s' : `${a.status}${a.status === 202 ? ', no mail in 30 s' : ''}${asked428 ? ' after a solved challenge' : ''}`);
    });
    await Promise.all(attackers);
    await Promise.all(real);
    await sleep(3000);
    stop = true;
    await sampler;
    await mail.poll();
    const server = histogramPercentile(histBefore, await routeHistogram(o.target, 'POST', '/api/v1/password-resets'), 0.99);
    const reached = [...attacked].filter((v) => mail.to(v).length > 0).length;
    const mailsToVictims = [...attacked].reduce((n, v) => n + mail.to(v).length, 0);
    const mailsToUnknown = mail.mails.filter((m) => m.to.startsWith(`nobody-${run}`)).length;
    const elapsed = Math.min(o.durationS, (Date.now() - t0) / 1000);
    const servedCount = served.filter(Boolean).length;
    Object.assign(figures, {
      'attack requests': sent,
      'attack rate (req/s)': Math.round(sent / elapsed),
      'answers': [...statuses.entries()].sort().map(([s, n]) => `${s}: ${n}`).join(', '),
      'attacked inboxes': attacked.size,
      'attacked inboxes that got mail': `${reached} (${((reached / Math.max(1, attacked.size)) * 100).toFixed(1)}%)`,
      'mails to attacked inboxes': mailsToVictims,
      'mails to unknown addresses': mailsToUnknown,
      'real users served': `${servedCount}/${realUsers.length}${unserved.length ? ` (not served: ${unserved.join('; ')})` : ''}`,
      'time to escalation (s)': firstEscalationMs === null ? 'never' : (firstEscalationMs / 1000).toFixed(1),
      'reset p50 / p99 latency at the client (ms)': `${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)}`,
      'reset p99 latency at the server (ms, histogram bucket)': `<= ${server.ms} (${(server.within20ms * 100).toFixed(2)}% of ${server.count} within 20 ms)`,
      'real users\' first answer p50 / max (ms)': `${percentile(realLatencies, 50).toFixed(1)} / ${Math.max(0, ...realLatencies).toFixed(1)}`,
      'peak RSS (MB)': Math.max(0, ...samples.map((s) => s.rssMb ?? 0)).toFixed(0),
    });
    if (o.scenario === 'reset-flood') {
      goals.push({ goal: 'fewer than 1 in 10 attacked inboxes gets any mail', met: reached < attacked.size / 10, value: `${reached}/${attacked.size}` });
      goals.push({ goal: 'at most a couple of hundred mails to attacked inboxes', met: mailsToVictims <= 200, value: String(mailsToVictims) });
      goals.push({ goal: 'no mail to unknown addresses', met: mailsToUnknown === 0, value: String(mailsToUnknown) });
      goals.push({ goal: 'at least 98% of real users served', met: servedCount >= 0.98 * realUsers.length, value: `${servedCount}/${realUsers.length}` });
      // Measured where the endpoint is: the target's own latency histogram. The client's figure
      // (above) also holds this process's own delays, on the same cores, solving proofs of work.
      goals.push({ goal: 'reset p99 <= 20 ms under the flood (at the server)', met: server.count > 0 && server.within20ms >= 0.99, value: `${(server.within20ms * 100).toFixed(2)}% within 20 ms; client-side p99 ${percentile(latencies, 99).toFixed(1)} ms` });
    } else {
      goals.push({ goal: 'at most 3 mails to the target in a day', met: mailsToVictims <= 3, value: String(mailsToVictims) });
    }
  } else if (o.scenario === 'bulk-bug') {
    // An operator action (or a job gone wrong) that mails every account.
    const b = await request(o.target, 'POST', '/api/v1/admin/broadcasts', { subject: `Simulated bulk mail ${run}`, text: 'This message simulates a bug that mails every account.', audience: { emails: accounts }, reason: 'simulate bulk-bug' }, admin);
    if (b.status !== 202) throw new Error(`broadcast refused: ${b.status}`);
    const id = (b.json as { id: string }).id;
    sent = accounts.length;
    const settle = Date.now();
    let last = -1;
    while (Date.now() - settle < 60_000) {
      await mail.poll();
      const n = mail.mails.filter((m) => m.subject.includes(run)).length;
      const br = await request(o.target, 'GET', '/api/v1/admin/broadcasts', undefined, admin);
      const view = ((br.json as { broadcasts: { id: string; held: number; queued: number }[] }).broadcasts ?? []).find((x) => x.id === id);
      if (process.env.SIM_DEBUG) process.stderr.write(`bulk: ${JSON.stringify(view)} n=${n} last=${last}\n`);
      if (view && view.queued === 0 && n === last) break;
      last = n;
      await sleep(1000);
    }
    const beforeHold = mail.mails.filter((m) => m.subject.includes(run)).length;
    const ap = await request(o.target, 'POST', `/api/v1/admin/broadcasts/${id}/approve`, { reason: 'simulate: approve after review' }, admin);
    const t = Date.now();
    if (process.env.SIM_DEBUG) process.stderr.write(`approved at ${Date.now() - t0} ms: ${ap.status}\n`);
    while (Date.now() - t < 120_000) {
      await mail.poll();
      if (process.env.SIM_DEBUG) process.stderr.write(`after approve ${Date.now() - t0} ms: ${mail.mails.filter((m) => m.subject.includes(run)).length}\n`);
      if (new Set(mail.mails.filter((m) => m.subject.includes(run)).map((m) => m.to)).size >= accounts.length) break;
      await sleep(500);
    }
    await sleep(2000);
    stop = true;
    await sampler;
    const mine = mail.mails.filter((m) => m.subject.includes(run));
    const per = new Map<string, number>();
    for (const m of mine) per.set(m.to, (per.get(m.to) ?? 0) + 1);
    const doubled = [...per.values()].filter((n) => n > 1).length;
    const missing = accounts.filter((a) => !per.has(a)).length;
    Object.assign(figures, { recipients: accounts.length, 'mails before the hold': beforeHold, 'approve answer': ap.status, 'mails after release': mine.length, 'recipients doubled': doubled, 'recipients missing': missing, 'peak RSS (MB)': Math.max(0, ...samples.map((s) => s.rssMb ?? 0)).toFixed(0) });
    const radius = Number(process.env.FLOODGATE_BLAST_RADIUS ?? 100);
    goals.push({ goal: `at most the blast radius (${radius}) before the hold`, met: beforeHold <= radius, value: String(beforeHold) });
    goals.push({ goal: 'after release every recipient exactly once', met: doubled === 0 && missing === 0, value: `${missing} missing, ${doubled} doubled` });
  } else {
    // Credential stuffing: wrong passwords across many accounts from many addresses.
    const attackers = Array.from({ length: o.concurrency }, async () => {
      while (!stop && Date.now() < deadline && sent < o.maxRequests) {
        const i = sent++;
        const a = await request(o.target, 'POST', '/api/v1/sessions', { email: accounts[i % accounts.length], password: `leaked-password-${i}` }, { 'x-forwarded-for': randomIp() }, false).catch(() => ({ status: 0, ms: 0, json: null }));
        count(a);
      }
    });
    const realOk: boolean[] = [];
    const real = realUsers.map(async (email, i) => {
      await sleep(((i + 0.5) / realUsers.length) * o.durationS * 800);
      const ip = randomIp();
      let a = await request(o.target, 'POST', '/api/v1/sessions', { email, password }, { 'x-forwarded-for': ip });
      if (a.status === 428) {
        const altcha = await solve((a.json as { challenge: Challenge }).challenge);
        if (altcha) a = await request(o.target, 'POST', '/api/v1/sessions', { email, password, altcha }, { 'x-forwarded-for': ip });
      }
      realOk[i] = a.status === 201;
    });
    await Promise.all(attackers);
    await Promise.all(real);
    stop = true;
    await sampler;
    const elapsed = Math.min(o.durationS, (Date.now() - t0) / 1000);
    const okCount = realOk.filter(Boolean).length;
    Object.assign(figures, {
      'attack requests': sent, 'attack rate (req/s)': Math.round(sent / elapsed),
      answers: [...statuses.entries()].sort().map(([s, n]) => `${s}: ${n}`).join(', '),
      'attacker sign-ins that succeeded': statuses.get(201) ?? 0,
      'real users signed in': `${okCount}/${realUsers.length}`,
      'time to escalation (s)': firstEscalationMs === null ? 'never' : (firstEscalationMs / 1000).toFixed(1),
      'sign-in p50 / p99 latency (ms)': `${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)}`,
      'peak RSS (MB)': Math.max(0, ...samples.map((s) => s.rssMb ?? 0)).toFixed(0),
    });
    goals.push({ goal: 'no attacker sign-in succeeds', met: (statuses.get(201) ?? 0) === 0, value: String(statuses.get(201) ?? 0) });
    goals.push({ goal: 'at least 98% of real users sign in', met: okCount >= 0.98 * realUsers.length, value: `${okCount}/${realUsers.length}` });
  }
  if (!o.quiet) process.stderr.write('\n');
  await mail.close();
  agent.destroy();
  const report: Report = { scenario: o.scenario, figures, goals, samples };
  if (o.out) writeReport(report, o.out);
  return report;
}

function metricsText(target: string): Promise<string | null> {
  return new Promise<string | null>((resolve) => {
    http.get(new URL('/metrics', target), { agent }, (res) => {
      let t = '';
      res.on('data', (c) => { t += c; });
      res.on('end', () => resolve(t));
    }).on('error', () => resolve(null));
  });
}

async function rssOf(target: string): Promise<number | null> {
  const r = await metricsText(target);
  const m = r && /^floodgate_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)/m.exec(r);
  return m ? Number(m[1]) / 1e6 : null;
}

/** Cumulative latency histogram of one route, as the target measured it: upper bound (s) -> count. */
export async function routeHistogram(target: string, method: string, route: string): Promise<Map<number, number>> {
  const text = (await metricsText(target)) ?? '';
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('floodgate_http_request_duration_seconds_bucket{')) continue;
    if (!line.includes(`method="${method}"`) || !line.includes(`route="${route}"`)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const n = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (le) out.set(le === '+Inf' ? Infinity : Number(le), n);
  }
  return out;
}

/** The smallest bucket bound under which `p` of the requests between two scrapes fell (ms), and how many there were. */
export function histogramPercentile(before: Map<number, number>, after: Map<number, number>, p: number): { ms: number; count: number; within20ms: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const at = (b: number) => (after.get(b) ?? 0) - (before.get(b) ?? 0);
  const bound = bounds.find((b) => total > 0 && at(b) >= p * total) ?? Infinity;
  return { ms: bound * 1000, count: total, within20ms: total > 0 ? at(0.02) / total : 0 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function reportMarkdown(r: Report): string {
  const rows = Object.entries(r.figures).map(([k, v]) => `| ${k} | ${v} |`);
  const goals = r.goals.map((g) => `| ${g.met ? 'met' : '**missed**'} | ${g.goal} | ${g.value} |`);
  return [`# Floodgate simulation: ${r.scenario}`, '', '| figure | value |', '|---|---|', ...rows, '', '| goal | | measured |', '|---|---|---|', ...goals, '', '![requests, mails and guard mode over time](chart.svg)', ''].join('\n');
}

/** A small SVG line chart: cumulative requests and mails, and the guard mode, over time. */
export function chartSvg(r: Report): string {
  const W = 720, H = 300, P = 40;
  const s = r.samples.length ? r.samples : [{ t: 0, requests: 0, mails: 0, mode: 'normal', rssMb: null }];
  const tMax = Math.max(1, ...s.map((x) => x.t));
  const rMax = Math.max(1, ...s.map((x) => x.requests));
  const mMax = Math.max(1, ...s.map((x) => x.mails));
  const x = (t: number) => P + (t / tMax) * (W - 2 * P);
  const y = (v: number, max: number) => H - P - (v / max) * (H - 2 * P);
  const line = (pts: string, color: string) => `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`;
  const modeY: Record<string, number> = { normal: 0, challenge: 1, hold: 2 };
  const bands = s.map((p, i) => {
    const next = s[i + 1]?.t ?? p.t;
    const level = modeY[p.mode] ?? 0;
    return level ? `<rect x="${x(p.t).toFixed(1)}" y="${P}" width="${Math.max(0, x(next) - x(p.t)).toFixed(1)}" height="${H - 2 * P}" fill="${level === 2 ? '#f4c7c3' : '#fce8b2'}"/>` : '';
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="#fff"/>${bands}
<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="#444"/><line x1="${P}" y1="${P}" x2="${P}" y2="${H - P}" stroke="#444"/>
${line(s.map((p) => `${x(p.t).toFixed(1)},${y(p.requests, rMax).toFixed(1)}`).join(' '), '#1a73e8')}
${line(s.map((p) => `${x(p.t).toFixed(1)},${y(p.mails, mMax).toFixed(1)}`).join(' '), '#d93025')}
<text x="${P}" y="${P - 10}">${r.scenario}: requests (blue, max ${rMax}), mails (red, max ${mMax}); shaded: challenge (yellow), hold (red)</text>
<text x="${W - P}" y="${H - P + 20}" text-anchor="end">${tMax.toFixed(0)} s</text>
</svg>\n`;
}

export function writeReport(r: Report, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.md'), reportMarkdown(r));
  writeFileSync(join(dir, 'chart.svg'), chartSvg(r));
  writeFileSync(join(dir, 'report.json'), JSON.stringify(r, null, 2));
}
