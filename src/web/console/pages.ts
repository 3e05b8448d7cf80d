/**
 * The operator console's pages: overview with live charts, holds (breakers and held messages),
 * broadcasts, kill switches and guard overrides, incidents, users, status notices, audit log.
 * Invariants:
 * - every page needs a console session (access.ts); every post also needs the console CSRF
 *   token and the origin check, and a reason of at least 3 characters;
 * - every operator action is audited with who, what, target and why: through the service that
 *   performs it where that service audits (breakers, kill switches, broadcasts), here otherwise;
 *   looking a user up is audited too (it shows personal data);
 * - everything shown is escaped text (operator input, user agents, emails, incident data);
 * - after a post the browser is redirected (303) to a fixed message: nothing is reflected.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { ctxOf, noStore } from '../../http/context.js';
import { normalizeEmail } from '../../kernel/email.js';
import { isAppError } from '../../kernel/errors.js';
import { broadcastOfCause, FLOWS, publicStatusNotices, publishStatusNotice, resolveStatusNotice, type Flow } from '../../modules/guard/index.js';
import { listSentMessages, MESSAGE_TYPES } from '../../modules/notifications/index.js';
import type { Services } from '../../services.js';
import { csrfField, csrfOk, csrfRefused } from '../csrf.js';
import { FormString } from '../forms.js';
import { percent, when } from '../format.js';
import { html, notice, sendPage, type SafeHtml } from '../layout.js';
import { EVENT_LABELS } from '../security-page.js';
import { seeOther } from '../session.js';
import { paragraphs } from '../status-page.js';
import type { ConsoleAccess } from './access.js';
import { requireConsolePage, type ConsoleUser } from './auth.js';

type Section = 'overview' | 'holds' | 'broadcasts' | 'switches' | 'incidents' | 'users' | 'status' | 'audit';

const SECTIONS: [Section, string, string][] = [
  ['overview', '/console', 'Overview'],
  ['holds', '/console/holds', 'Holds'],
  ['broadcasts', '/console/broadcasts', 'Broadcasts'],
  ['switches', '/console/switches', 'Switches'],
  ['incidents', '/console/incidents', 'Incidents'],
  ['users', '/console/users', 'Users'],
  ['status', '/console/status', 'Status page'],
  ['audit', '/console/audit', 'Audit log'],
];

const DONE: Record<string, string> = {
  released: 'Released: the held messages go out now, once each.',
  discarded: 'Discarded: the held messages will never be sent.',
  tripped: 'The breaker is open: further messages of its type and cause are held.',
  broadcast_created: 'The broadcast was queued.',
  broadcast_approved: 'Approved: the held recipients get the broadcast now, once each.',
  broadcast_approval_recorded: 'Your approval is recorded. One more operator must approve before the held recipients get it.',
  switch_set: 'The kill switch was changed.',
  override_set: 'The guard mode was changed.',
  sessions_revoked: 'Every session of that account was signed out.',
  reset_started: 'A password reset was requested for that account: the owner gets the usual reset mail (subject to the usual limits).',
  notice_published: 'The notice is on the public status page.',
  notice_resolved: 'The notice is marked resolved.',
};

const ERRORS: Record<string, string> = {
  reason: 'Give a reason of at least 3 characters: it goes into the audit log.',
  not_found: 'Nothing matches that any more (it may have been handled already).',
  invalid: 'That request was not valid.',
  reset_refused: 'The reset request was refused by the guard (limits or a challenge): try again later, or ask the owner to use /forgot.',
  own_broadcast: 'You created this broadcast: another operator must approve it. Ask one of them, or discard it on Holds.',
  approved_already: 'You already approved this broadcast: another operator must approve it too.',
  not_awaiting: 'That broadcast is not waiting for an approval any more.',
  broadcast_hold: 'That hold is a broadcast: it is released by approving the broadcast (on Broadcasts), where the two-person rule applies. You may discard it here.',
};

const CLASSIFICATION: Record<string, string> = {
  external_flood: 'External flood', credential_stuffing: 'Credential stuffing', internal_bug: 'Internal bug', targeted_resets: 'Targeted resets', possible_breach: 'Possible breach', unclear: 'Unclear',
};

const MODE_BADGE: Record<string, string> = { normal: 'ok', challenge: 'warn', hold: 'bad' };

const EVIDENCE_LABELS: Record<string, string> = {
  windowMinutes: 'Window (minutes)', resetRequests: 'Reset requests', resetDenials: '"I didn\'t request this" reports', signinFailures: 'Failed sign-ins',
  signinSuccesses: 'Successful sign-ins', newDeviceSignins: 'Sign-ins from new devices', passwordResetsCompleted: 'Completed resets', held: 'Messages held now',
  unknownShare: 'Reset requests for unknown emails',
};

const Csrf = Type.Optional(FormString(128));
const Reason = FormString(1000);
const ResultQuery = Type.Object({ done: Type.Optional(FormString(40)), error: Type.Optional(FormString(40)) }, { additionalProperties: false });

function reasonField(id: string, label = 'Reason (kept in the audit log)'): SafeHtml {
  return html`<div class="field"><label for="${id}">${label}</label><input id="${id}" name="reason" type="text" required minlength="3" maxlength="1000"></div>`;
}

function badge(text: string, kind = ''): SafeHtml {
  return html`<span class="badge ${kind}">${text}</span>`;
}

export async function consolePages(app: App, s: Services, access: ConsoleAccess): Promise<void> {
  const db = s.storage.db;

  function nav(u: ConsoleUser, here: Section): SafeHtml {
    return html`${SECTIONS.map(([key, href, label]) => html`<a href="${href}"${key === here ? html` aria-current="page"` : ''}>${label}</a> `)}
<form method="post" action="/console/logout" class="inline">${csrfField(u.csrf)}<button type="submit" class="link">Sign out (${u.email})</button></form>`;
  }

  function show(reply: FastifyReply, u: ConsoleUser, here: Section, title: string, body: SafeHtml, q: { done?: string | undefined; error?: string | undefined } = {}, extra: { scripts?: string[]; styles?: string[]; status?: number } = {}) {
    noStore(reply);
    const msg = html`${q.done && DONE[q.done] ? notice('success', DONE[q.done]!) : ''}${q.error && ERRORS[q.error] ? notice('error', ERRORS[q.error]!) : ''}`;
    return sendPage(reply, extra.status ?? 200, title, html`${msg}${body}`, { wide: true, nav: nav(u, here), styles: ['/assets/console.css', ...(extra.styles ?? [])], ...(extra.scripts ? { scripts: extra.scripts } : {}) });
  }

  /** A console page: the session or a redirect to sign in. */
  function get<Q>(path: string, summary: string, querystring: unknown, handler: (u: ConsoleUser, req: FastifyRequest<{ Querystring: Q }>, reply: FastifyReply) => Promise<FastifyReply>) {
    app.get(path, { schema: { tags: ['console'], summary: `Console: ${summary}`, querystring: querystring as never } }, async (req, reply) => {
      const u = await requireConsolePage(s, access, req, reply);
      if (!u) return reply;
      return handler(u, req as FastifyRequest<{ Querystring: Q }>, reply);
    });
  }

  /** A console action: session, CSRF, a reason; then the action, then back to `back` with a fixed message. */
  function post<B extends object>(path: string, summary: string, body: unknown, back: (b: B) => string, act: (u: ConsoleUser, b: B, req: FastifyRequest) => Promise<string>) {
    app.post(path, { schema: { tags: ['console'], summary: `Console: ${summary}`, body: body as never } }, async (req, reply) => {
      noStore(reply);
      const u = await requireConsolePage(s, access, req, reply);
      if (!u) return reply;
      const b = req.body as B & { csrf?: string };
      if (!csrfOk(req, s.config.publicUrl, u.csrf, b?.csrf)) return csrfRefused(reply, back(b));
      const reason = (b as { reason?: unknown }).reason;
      if (typeof reason === 'string' && reason.trim().length < 3) return seeOther(reply, withQuery(back(b), 'error', 'reason'));
      const outcome = await act(u, b, req);
      return seeOther(reply, outcome.startsWith('error:') ? withQuery(back(b), 'error', outcome.slice(6)) : withQuery(back(b), 'done', outcome));
    });
  }

  // --- overview --------------------------------------------------------------------------------

  get<{ done?: string; error?: string }>('/console', 'overview with live charts', ResultQuery, async (u, req, reply) => {
    const [views, incidents, breakers, broadcasts, resetShare] = await Promise.all([
      Promise.all(FLOWS.map((f) => s.guard.view(f))), s.incidents.list(20), s.outbound.breakers(), s.broadcasts.list(20), s.guard.unknownShare('reset'),
    ]);
    const openIncidents = incidents.filter((i) => i.state === 'open');
    const held = breakers.reduce((n, b) => n + b.held, 0);
    const awaiting = broadcasts.filter((b) => b.state === 'awaiting_approval');
    return show(reply, u, 'overview', 'Operator console', html`<div class="summary">
<a class="tile${openIncidents.length ? ' alert' : ''}" href="/console/incidents"><span class="n">${openIncidents.length}</span> open incidents</a>
<a class="tile${held ? ' alert' : ''}" href="/console/holds"><span class="n" id="held-total">${held}</span> held messages and requests</a>
<a class="tile${awaiting.length ? ' alert' : ''}" href="/console/broadcasts"><span class="n">${awaiting.length}</span> broadcasts awaiting approval</a>
</div>
<section class="card" aria-labelledby="guard-h">
<h2 id="guard-h">Guard</h2>
<div class="table-wrap"><table id="flows">
<thead><tr><th scope="col">Flow</th><th scope="col">Mode</th><th scope="col">Pressure</th><th scope="col">Requests this minute</th><th scope="col">Sources</th><th scope="col">Unknown emails</th><th scope="col">Top sources</th><th scope="col">Top networks</th></tr></thead>
<tbody>
${views.map((v) => html`<tr data-flow="${v.flow}">
<th scope="row">${v.flow}</th>
<td data-k="mode">${badge(v.mode, MODE_BADGE[v.mode] ?? '')}${v.override ? ' (set by an operator)' : ''}</td>
<td data-k="pressure">${v.pressure}</td>
<td data-k="requests">${v.current.requests}</td>
<td data-k="sources">${v.current.sources}</td>
<td data-k="unknown">${v.flow === 'reset' ? percent(resetShare) : '—'}</td>
<td data-k="topSources">${v.topSources.slice(0, 3).map((t) => html`<code>${t.item}</code> ${t.count}<br>`)}</td>
<td data-k="topNetworks">${v.topNetworks.slice(0, 3).map((t) => html`<code>${t.item}</code> ${t.count}<br>`)}</td>
</tr>`)}
</tbody>
</table></div>
<p class="hint">Change a mode or pause a flow on <a href="/console/switches">Switches</a>.</p>
</section>
<section class="card" aria-labelledby="live-h">
<h2 id="live-h">Live (every 2 s)</h2>
<p id="live-status" class="hint" role="status">Live charts need JavaScript; the figures above are as of page load.</p>
<div class="charts">
<figure><figcaption>Reset requests and failed sign-ins per 2 s</figcaption><div class="chart" id="chart-requests"></div></figure>
<figure><figcaption>Mail queued, sent and held per 2 s</figcaption><div class="chart" id="chart-mail"></div></figure>
</div>
<div class="table-wrap"><table id="mail-by-type"><caption>Mail by type (last 2 s)</caption>
<thead><tr><th scope="col">Type</th><th scope="col">Queued</th><th scope="col">Sent</th><th scope="col">Held</th></tr></thead>
<tbody><tr><td colspan="4" class="hint">Waiting for the first figures…</td></tr></tbody></table></div>
</section>`, req.query, { scripts: ['/assets/console.js'], styles: ['/assets/uplot.css'] });
  });

  // --- holds ---------------------------------------------------------------------------------------

  get<{ done?: string; error?: string }>('/console/holds', 'breakers and held messages', ResultQuery, async (u, req, reply) => {
    const [breakers, heldByType] = await Promise.all([
      s.outbound.breakers(),
      db.selectFrom('outbox').select(['held_reason', 'type', (eb) => eb.fn.countAll<number>().as('n')]).where('state', '=', 'held').groupBy(['held_reason', 'type']).execute(),
    ]);
    return show(reply, u, 'holds', 'Holds', html`<p>Messages are never dropped: a breaker, a kill switch or the blast radius holds them until you release (each goes out once) or discard them (never sent). Both are audited.</p>
${breakers.length
    ? breakers.map((b) => html`<section class="card" aria-labelledby="b-${b.name}">
<h2 id="b-${b.name}"><code>${b.name}</code> ${badge(b.state, b.state === 'open' || b.state === 'holding' ? 'bad' : 'ok')}</h2>
<p>${b.held} held · ${describeHold(b.name, b.reason, s.config.blastRadius)}${b.trippedAt ? html` · tripped <time datetime="${b.trippedAt}">${when(b.trippedAt)}</time> by ${b.trippedBy ?? 'the guard'}` : ''}</p>
${heldByType.some((h) => h.held_reason === heldReasonOf(b.name))
    ? html`<p class="hint">Held by type: ${heldByType.filter((h) => h.held_reason === heldReasonOf(b.name)).map((h) => html`${h.type} ${Number(h.n)} `)}</p>`
    : ''}
${b.held > 0 || b.state === 'open'
    ? broadcastOfCause(b.name.startsWith('blast:') ? b.name.slice(6) : '')
      // A broadcast is released by its approval (two-person rule), never from here.
      ? html`<p class="hint">This is a broadcast: <a href="/console/broadcasts">approve it on Broadcasts</a> (not by its creator alone), or discard it here.</p>
<form method="post" action="/console/holds/discard">${csrfField(u.csrf)}<input type="hidden" name="name" value="${b.name}">${reasonField(`hold-${b.name}`, 'Reason for discarding (kept in the audit log)')}
<div class="actions"><button type="submit" class="danger">Discard ${b.held}: never send</button></div></form>`
      : html`<form method="post" action="/console/holds/release">${csrfField(u.csrf)}<input type="hidden" name="name" value="${b.name}">${reasonField(`hold-${b.name}`, 'Reason for releasing or discarding (kept in the audit log)')}
<div class="actions"><button type="submit">Release ${b.held}: send each once</button><button type="submit" formaction="/console/holds/discard" class="danger">Discard ${b.held}: never send</button></div></form>`
    : ''}
</section>`)
    : html`<p class="hint">No breaker has tripped and nothing is held.</p>`}
<section class="card" aria-labelledby="trip-h">
<h2 id="trip-h">Trip a breaker by hand</h2>
<form method="post" action="/console/holds/trip">${csrfField(u.csrf)}
<div class="field"><label for="trip-name">Breaker (message type : cause)</label><input id="trip-name" name="name" type="text" required pattern="[a-z_]+:(anonymous|user|operator|job)" maxlength="80" placeholder="password_reset:anonymous" aria-describedby="trip-hint"><p id="trip-hint" class="hint">Further messages of this type and cause are held until released.</p></div>
${reasonField('trip-reason')}
<button type="submit" class="danger">Trip</button>
</form>
</section>`, req.query);
  });

  const HoldBody = Type.Object({ csrf: Csrf, name: Type.String({ minLength: 3, maxLength: 200, pattern: '^[A-Za-z0-9_:.-]+$' }), reason: Reason }, { additionalProperties: false });
  post<{ name: string; reason: string }>('/console/holds/release', 'release held messages', HoldBody, () => '/console/holds', async (u, b) => {
    try {
      await s.outbound.release(b.name, u.operator, b.reason.trim());
    } catch (e) {
      if (isAppError(e) && e.code === 'conflict') return 'error:broadcast_hold';
      throw e;
    }
    s.courierWake?.();
    return 'released';
  });
  post<{ name: string; reason: string }>('/console/holds/discard', 'discard held messages', HoldBody, () => '/console/holds', async (u, b) => {
    await s.outbound.discard(b.name, u.operator, b.reason.trim());
    return 'discarded';
  });
  post<{ name: string; reason: string }>('/console/holds/trip', 'trip a breaker', HoldBody, () => '/console/holds', async (u, b) => {
    if (!/^[a-z_]+:(anonymous|user|operator|job)$/.test(b.name)) return 'error:invalid';
    await s.outbound.trip(b.name, b.reason.trim(), u.operator);
    return 'tripped';
  });

  // --- broadcasts --------------------------------------------------------------------------------

  const broadcastForm = (u: ConsoleUser, v: { subject?: string; text?: string; audience?: string; emails?: string; error?: string | null } = {}) => html`<section class="card" aria-labelledby="new-b-h">
<h2 id="new-b-h">New broadcast</h2>
${v.error ? notice('error', v.error) : ''}
<p class="hint">A security notice to users, by email. Past ${s.config.blastRadius} recipients the rest is held until an operator approves it. Never ask for passwords, and link only to this service.</p>
<form method="post" action="/console/broadcasts">${csrfField(u.csrf)}
<div class="field"><label for="b-subject">Subject</label><input id="b-subject" name="subject" type="text" required maxlength="200" value="${v.subject ?? ''}"></div>
<div class="field"><label for="b-text">Text</label><textarea id="b-text" name="text" required maxlength="20000" rows="6">${v.text ?? ''}</textarea></div>
<fieldset><legend>Recipients</legend>
<div class="check"><input id="aud-all" type="radio" name="audience" value="all"${v.audience !== 'emails' ? html` checked` : ''}><label for="aud-all">Every account</label></div>
<div class="check"><input id="aud-emails" type="radio" name="audience" value="emails"${v.audience === 'emails' ? html` checked` : ''}><label for="aud-emails">Only these addresses</label></div>
<div class="field"><label for="b-emails">Addresses (one per line, at most 1,000)</label><textarea id="b-emails" name="emails" rows="3" maxlength="50000">${v.emails ?? ''}</textarea></div>
</fieldset>
${reasonField('b-reason')}
<button type="submit">Queue the broadcast</button>
</form>
</section>`;

  get<{ done?: string; error?: string }>('/console/broadcasts', 'broadcasts', ResultQuery, async (u, req, reply) => {
    const list = await s.broadcasts.list(50);
    return show(reply, u, 'broadcasts', 'Broadcasts', html`<div class="table-wrap"><table>
<caption class="visually-hidden">Broadcasts</caption>
<thead><tr><th scope="col">Subject</th><th scope="col">State</th><th scope="col">Recipients</th><th scope="col">Sent</th><th scope="col">Held</th><th scope="col">Queued</th><th scope="col">By</th></tr></thead>
<tbody>
${list.length ? list.map((b) => html`<tr>
<td>${b.subject}<br><span class="hint"><time datetime="${b.createdAt}">${when(b.createdAt)}</time></span></td>
<td>${badge(b.state.replace(/_/g, ' '), b.state === 'awaiting_approval' ? 'warn' : '')}</td>
<td>${b.recipients}</td><td>${b.sent}</td><td>${b.held}</td><td>${b.queued}</td>
<td>${b.createdBy}${b.approvedBy ? html`<br><span class="hint">approved by ${b.approvedBy}</span>` : b.approvals.length ? html`<br><span class="hint">approved by ${b.approvals.map((a) => a.by).join(', ')} (${b.approvals.length} of ${b.approvalsNeeded})</span>` : ''}</td>
</tr>`) : html`<tr><td colspan="7" class="hint">No broadcasts yet.</td></tr>`}
</tbody></table></div>
${list.filter((b) => b.held > 0 && b.state === 'awaiting_approval').map((b) => html`<section class="card prompt" aria-labelledby="ap-${b.id}">
<h2 id="ap-${b.id}">Awaiting approval: ${b.subject}</h2>
<p>${b.sent} sent, <strong>${b.held} held</strong> past the blast radius of ${s.config.blastRadius}. Read the text again, then approve to send it to the held recipients (once each).</p>
<p class="hint">${b.approvalsNeeded === 2
    ? html`Two different operators must approve (${b.approvals.length} so far${b.approvals.length ? html`: ${b.approvals.map((a) => a.by).join(', ')}` : ''}).`
    : html`The operator who created it (${b.createdBy}) cannot approve it alone while another operator exists.`} Every approval is in the audit log.</p>
<form method="post" action="/console/broadcasts/approve">${csrfField(u.csrf)}<input type="hidden" name="id" value="${b.id}">${reasonField(`approve-${b.id}`)}<button type="submit">${b.approvalsNeeded - b.approvals.length > 1 ? `Approve (${b.approvals.length + 1} of ${b.approvalsNeeded})` : `Approve and send the held ${b.held}`}</button></form>
</section>`)}
${broadcastForm(u)}`, req.query);
  });

  app.post('/console/broadcasts', {
    schema: {
      tags: ['console'], summary: 'Console: queue a broadcast',
      body: Type.Object({ csrf: Csrf, subject: FormString(200), text: FormString(20_000), audience: Type.Union([Type.Literal('all'), Type.Literal('emails')]), emails: Type.Optional(FormString(50_000)), reason: Reason }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    noStore(reply);
    const u = await requireConsolePage(s, access, req, reply);
    if (!u) return reply;
    const b = req.body;
    if (!csrfOk(req, s.config.publicUrl, u.csrf, b.csrf)) return csrfRefused(reply, '/console/broadcasts');
    const again = (error: string) => show(reply, u, 'broadcasts', 'Broadcasts', broadcastForm(u, { subject: b.subject, text: b.text, audience: b.audience, emails: b.emails ?? '', error }), {}, { status: 400 });
    if (b.reason.trim().length < 3) return again(ERRORS.reason!);
    if (!b.subject.trim() || !b.text.trim()) return again('Write a subject and a text.');
    const emails = (b.emails ?? '').split(/[\s,;]+/).map((e) => e.trim()).filter(Boolean);
    if (b.audience === 'emails' && (emails.length === 0 || emails.length > 1_000)) return again('List between 1 and 1,000 addresses, one per line (for longer lists use POST /api/v1/admin/broadcasts).');
    await s.broadcasts.create(u.operator, { subject: b.subject.trim(), text: b.text, audience: b.audience === 'all' ? 'all' : { emails } }, b.reason.trim());
    s.courierWake?.();
    return seeOther(reply, '/console/broadcasts?done=broadcast_created');
  });

  post<{ id: string; reason: string }>('/console/broadcasts/approve', 'approve a broadcast past the blast radius', Type.Object({ csrf: Csrf, id: FormString(40), reason: Reason }, { additionalProperties: false }), () => '/console/broadcasts', async (u, b) => {
    let view;
    try {
      view = await s.broadcasts.approve(b.id, u.operator, b.reason.trim());
    } catch (e) {
      if (!isAppError(e)) throw e;
      if (e.code === 'not_found') return 'error:not_found';
      if (e.code === 'forbidden') return 'error:own_broadcast';
      if (e.code === 'conflict') return (e.extra as { reason?: string } | undefined)?.reason === 'already_approved' ? 'error:approved_already' : 'error:not_awaiting';
      throw e;
    }
    s.courierWake?.();
    return view.state === 'approved' ? 'broadcast_approved' : 'broadcast_approval_recorded';
  });

  // --- switches ------------------------------------------------------------------------------------

  get<{ done?: string; error?: string }>('/console/switches', 'kill switches and guard overrides', ResultQuery, async (u, req, reply) => {
    const [switches, modes] = await Promise.all([s.outbound.listKillSwitches(), Promise.all(FLOWS.map(async (f) => ({ flow: f, view: await s.guard.view(f) })))]);
    const byName = new Map(switches.map((k) => [k.name, k]));
    const switchRow = (name: string, label: SafeHtml | string) => {
      const k = byName.get(name);
      return html`<tr><th scope="row">${label}</th>
<td>${k ? html`${badge(k.action === 'pause' ? 'paused' : 'in-app only', 'warn')}<br><span class="hint">${k.setBy}, <time datetime="${k.setAt}">${when(k.setAt)}</time>: ${k.reason}</span>` : badge('running', 'ok')}</td>
<td><form method="post" action="/console/switches" class="row">${csrfField(u.csrf)}<input type="hidden" name="name" value="${name}">
<label class="visually-hidden" for="sw-${name}">New state for ${name}</label><select id="sw-${name}" name="action"><option value="resume">Running</option><option value="pause"${k?.action === 'pause' ? html` selected` : ''}>Pause (hold everything)</option><option value="inbox_only"${k?.action === 'inbox_only' ? html` selected` : ''}>In-app only (no email)</option></select>
<label class="visually-hidden" for="swr-${name}">Reason</label><input id="swr-${name}" name="reason" type="text" required minlength="3" maxlength="1000" placeholder="Reason (audited)">
<button type="submit" class="secondary">Set</button></form></td></tr>`;
    };
    return show(reply, u, 'switches', 'Switches', html`<section class="card" aria-labelledby="modes-h">
<h2 id="modes-h">Guard mode per flow</h2>
<p class="hint">Normal: limits only. Challenge: anonymous requests must solve a proof-of-work puzzle. Hold: reset requests without a solved puzzle wait for an operator. Automatic: the guard decides from traffic.</p>
<div class="table-wrap"><table><thead><tr><th scope="col">Flow</th><th scope="col">Now</th><th scope="col">Change</th></tr></thead><tbody>
${modes.map(({ flow, view }) => html`<tr><th scope="row">${flow}</th><td>${badge(view.mode, MODE_BADGE[view.mode] ?? '')}${view.override ? html` <span class="hint">(operator override)</span>` : html` <span class="hint">(automatic)</span>`}</td>
<td><form method="post" action="/console/switches/mode" class="row">${csrfField(u.csrf)}<input type="hidden" name="flow" value="${flow}">
<label class="visually-hidden" for="mode-${flow}">Mode for ${flow}</label><select id="mode-${flow}" name="mode"><option value="auto">Automatic</option>${(['normal', 'challenge', 'hold'] as const).map((m) => html`<option value="${m}"${view.override === m ? html` selected` : ''}>${m}</option>`)}</select>
<label class="visually-hidden" for="moder-${flow}">Reason</label><input id="moder-${flow}" name="reason" type="text" required minlength="3" maxlength="1000" placeholder="Reason (audited)">
<button type="submit" class="secondary">Set</button></form></td></tr>`)}
</tbody></table></div>
</section>
<section class="card" aria-labelledby="ks-h">
<h2 id="ks-h">Kill switches</h2>
<p class="hint">Pause holds messages of a type (released when resumed); in-app only delivers them to the account's inbox instead of email. A paused flow answers requests as usual and sends nothing.</p>
<div class="table-wrap"><table><thead><tr><th scope="col">What</th><th scope="col">State</th><th scope="col">Change</th></tr></thead><tbody>
${FLOWS.filter((f) => f === 'reset').map((f) => switchRow(`flow:${f}`, html`Flow: ${f}`))}
${MESSAGE_TYPES.map((t) => switchRow(`type:${t}`, html`Mail: ${t}`))}
</tbody></table></div>
</section>`, req.query);
  });

  post<{ name: string; action: string; reason: string }>('/console/switches', 'set a kill switch', Type.Object({ csrf: Csrf, name: Type.String({ maxLength: 60, pattern: '^(type|flow):[a-z_]{1,40}$' }), action: Type.Union([Type.Literal('resume'), Type.Literal('pause'), Type.Literal('inbox_only')]), reason: Reason }, { additionalProperties: false }), () => '/console/switches', async (u, b) => {
    await s.outbound.setKillSwitch(b.name, b.action === 'resume' ? null : (b.action as 'pause' | 'inbox_only'), u.operator, b.reason.trim());
    s.courierWake?.();
    return 'switch_set';
  });

  post<{ flow: string; mode: string; reason: string }>('/console/switches/mode', 'override a flow\'s guard mode', Type.Object({ csrf: Csrf, flow: Type.Union(FLOWS.map((f) => Type.Literal(f))), mode: Type.Union([Type.Literal('auto'), Type.Literal('normal'), Type.Literal('challenge'), Type.Literal('hold')]), reason: Reason }, { additionalProperties: false }), () => '/console/switches', async (u, b) => {
    const mode = b.mode === 'auto' ? null : (b.mode as 'normal' | 'challenge' | 'hold');
    await s.guard.override(b.flow as Flow, mode, u.operator.name);
    await s.audit.record(db, u.operator, 'guard.override', `flow:${b.flow}`, b.reason.trim(), { mode });
    return 'override_set';
  });

  // --- incidents -----------------------------------------------------------------------------------

  get<Record<string, never>>('/console/incidents', 'incidents with classification and evidence', Type.Object({}, { additionalProperties: false }), async (u, _req, reply) => {
    const [list, evidence] = await Promise.all([s.incidents.list(50), s.incidents.evidence()]);
    const evidenceList = (e: Record<string, unknown>) => html`<dl class="evidence">${Object.entries(e).filter(([k]) => k !== 'mailByCause').map(([k, v]) => html`<dt>${EVIDENCE_LABELS[k] ?? k}</dt><dd>${k === 'unknownShare' ? percent(v as number | null) : String(v ?? '—')}</dd>`)}
${Array.isArray(e.mailByCause) && e.mailByCause.length ? html`<dt>mail by cause</dt><dd>${(e.mailByCause as { type: string; causeKind: string; count: number }[]).map((m) => html`${m.type} / ${m.causeKind}: ${m.count}<br>`)}</dd>` : ''}</dl>`;
    return show(reply, u, 'incidents', 'Incidents', html`<section class="card" aria-labelledby="now-h">
<h2 id="now-h">Evidence, last hour</h2>
${evidenceList(evidence as unknown as Record<string, unknown>)}
</section>
${list.length ? list.map((i) => {
    const reasons = Array.isArray(i.data.reasons) ? (i.data.reasons as unknown[]).map(String) : [];
    const ev = i.data.evidence && typeof i.data.evidence === 'object' ? (i.data.evidence as Record<string, unknown>) : null;
    return html`<section class="card" aria-labelledby="i-${i.id}">
<h2 id="i-${i.id}">${i.title}</h2>
<p>${badge(i.state, i.state === 'open' ? 'bad' : 'ok')} ${badge(CLASSIFICATION[i.classification] ?? i.classification, 'warn')} <span class="hint">opened <time datetime="${i.openedAt}">${when(i.openedAt)}</time>, last seen <time datetime="${i.lastSeenAt}">${when(i.lastSeenAt)}</time>${i.closedAt ? html`, closed <time datetime="${i.closedAt}">${when(i.closedAt)}</time>` : ''}</span></p>
${reasons.length ? html`<ul>${reasons.map((r) => html`<li>${r}</li>`)}</ul>` : ''}
${ev ? html`<details><summary>Evidence when last seen</summary>${evidenceList(ev)}</details>` : ''}
</section>`;
  }) : html`<p class="hint">No incidents.</p>`}`);
  });

  // --- users ---------------------------------------------------------------------------------------

  get<{ email?: string; done?: string; error?: string }>('/console/users', 'look a user up by email', Type.Object({ email: Type.Optional(FormString(320)), done: Type.Optional(FormString(40)), error: Type.Optional(FormString(40)) }, { additionalProperties: false }), async (u, req, reply) => {
    const email = (req.query.email ?? '').trim();
    const lookup = html`<form method="get" action="/console/users" class="row">
<label for="lookup">Email address</label><input id="lookup" name="email" type="email" required maxlength="320" value="${email}">
<button type="submit">Look up</button></form>`;
    if (!email) return show(reply, u, 'users', 'Users', lookup, req.query);
    const user = await s.accounts.findByEmail(email);
    // Looking at an account shows personal data: who looked, and when, is audited.
    await s.audit.record(db, u.operator, 'user.lookup', normalizeEmail(email), 'console lookup', { found: user !== undefined });
    if (!user) return show(reply, u, 'users', 'Users', html`${lookup}${notice('info', 'No account has this address.')}`, req.query);
    const [sessions, events, mfa, messages] = await Promise.all([s.sessions.list(user.id, null), s.events.listForUser(db, user.id, 50), s.mfa.factors.status(user.id), listSentMessages(db, user.id, s.clock.now(), s.config.publicUrl)]);
    return show(reply, u, 'users', 'Users', html`${lookup}
<section class="card" aria-labelledby="acct-h">
<h2 id="acct-h">${user.email}</h2>
<dl class="evidence"><dt>Created</dt><dd>${when(Number(user.created_at))}</dd><dt>Email confirmed</dt><dd>${user.email_verified_at === null ? 'no' : when(Number(user.email_verified_at))}</dd>
<dt>Password changed</dt><dd>${when(user.password_changed_at === null ? null : Number(user.password_changed_at))}</dd><dt>Locked</dt><dd>${user.locked_at === null ? 'no' : when(Number(user.locked_at))}</dd>
<dt>Two-step verification</dt><dd>${mfa.enabled ? `on (app: ${mfa.totp.enabled ? 'yes' : 'no'}, passkeys: ${mfa.passkeys}, recovery codes left: ${mfa.recoveryCodesLeft})` : 'off'}</dd></dl>
<div class="actions">
<form method="post" action="/console/users/revoke-sessions">${csrfField(u.csrf)}<input type="hidden" name="email" value="${user.email}">${reasonField('revoke-reason', 'Reason for signing every session out (audited)')}<button type="submit" class="danger">Sign out every session (${sessions.length})</button></form>
<form method="post" action="/console/users/reset">${csrfField(u.csrf)}<input type="hidden" name="email" value="${user.email}">${reasonField('reset-reason', 'Reason for the reset link (audited)')}<button type="submit" class="secondary">Send the owner a reset link</button></form>
</div>
</section>
<section class="card" aria-labelledby="us-h"><h2 id="us-h">Sessions</h2>
${sessions.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Device</th><th scope="col">Address</th><th scope="col">Method</th><th scope="col">Signed in</th><th scope="col">Last active</th></tr></thead><tbody>
${sessions.map((x) => html`<tr><td>${x.device}</td><td>${x.ip ?? '—'}</td><td>${x.authMethod}</td><td>${when(x.createdAt)}</td><td>${when(x.lastSeenAt)}</td></tr>`)}
</tbody></table></div>` : html`<p class="hint">No live session.</p>`}
</section>
<section class="card" aria-labelledby="ue-h"><h2 id="ue-h">Security events</h2>
${events.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Event</th><th scope="col">When</th><th scope="col">Device</th><th scope="col">Address</th><th scope="col">Details</th></tr></thead><tbody>
${events.map((ev) => html`<tr><td>${EVENT_LABELS[ev.type] ?? ev.type}<br><code class="hint">${ev.type}</code></td><td>${when(ev.at)}</td><td>${ev.device ?? '—'}</td><td>${ev.ip ?? '—'}</td><td><code class="small">${JSON.stringify(ev.data).slice(0, 300)}</code></td></tr>`)}
</tbody></table></div>` : html`<p class="hint">No events.</p>`}
</section>
<section class="card" aria-labelledby="um-h"><h2 id="um-h">Messages (90 days)</h2>
${messages.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Subject</th><th scope="col">Type</th><th scope="col">Channel</th><th scope="col">State</th><th scope="col">Queued</th><th scope="col">Sent</th></tr></thead><tbody>
${messages.map((m) => html`<tr><td>${m.subject}</td><td>${m.type}</td><td>${m.channel}</td><td>${m.state}</td><td>${when(m.createdAt)}</td><td>${when(m.sentAt)}</td></tr>`)}
</tbody></table></div>` : html`<p class="hint">No messages.</p>`}
</section>`, req.query);
  });

  const UserAction = Type.Object({ csrf: Csrf, email: FormString(320), reason: Reason }, { additionalProperties: false });
  const userBack = (b: { email?: string }) => `/console/users?email=${encodeURIComponent(b?.email ?? '')}`;
  post<{ email: string; reason: string }>('/console/users/revoke-sessions', 'sign out every session of an account', UserAction, userBack, async (u, b, req) => {
    const user = await s.accounts.findByEmail(b.email);
    if (!user) return 'error:not_found';
    await db.transaction().execute(async (trx) => {
      const n = await s.sessions.revokeAll(trx, user.id, 'operator');
      await s.events.record(trx, 'operator.action', user.id, ctxOf(req), { action: 'sessions.revoked', by: u.operator.name, count: n });
      await s.audit.record(trx, u.operator, 'user.revoke_sessions', user.email, b.reason.trim(), { revoked: n });
    });
    return 'sessions_revoked';
  });
  post<{ email: string; reason: string }>('/console/users/reset', 'start a password reset on the owner\'s behalf', UserAction, userBack, async (u, b, req) => {
    const user = await s.accounts.findByEmail(b.email);
    if (!user) return 'error:not_found';
    try {
      // The owner gets the ordinary reset mail, through the ordinary limits: the console mints nothing itself.
      await s.recovery.request(user.email, ctxOf(req), null);
    } catch (e) {
      if (isAppError(e) && ['rate_limited', 'challenge_required', 'invalid_request'].includes(e.code)) return 'error:reset_refused';
      throw e;
    }
    await s.audit.record(db, u.operator, 'user.reset_requested', user.email, b.reason.trim());
    return 'reset_started';
  });

  // --- status notices ------------------------------------------------------------------------------

  get<{ done?: string; error?: string }>('/console/status', 'status page notices', ResultQuery, async (u, req, reply) => {
    const notices = await publicStatusNotices(db, s.clock.now());
    return show(reply, u, 'status', 'Status page', html`<p>What the public sees on <a href="/status">/status</a>. Say what happened, what users should do (or that they need do nothing), and that we never ask for passwords by email.</p>
${notices.map((n) => html`<section class="card" aria-labelledby="sn-${n.id}">
<h2 id="sn-${n.id}">${n.title}</h2>
<p>${badge(n.resolvedAt ? 'resolved' : n.severity, n.resolvedAt ? 'ok' : n.severity === 'info' ? '' : 'warn')} <span class="hint">published <time datetime="${n.publishedAt}">${when(n.publishedAt)}</time></span></p>
${paragraphs(n.body)}
${n.resolvedAt ? '' : html`<form method="post" action="/console/status/resolve" class="row">${csrfField(u.csrf)}<input type="hidden" name="id" value="${n.id}"><label class="visually-hidden" for="res-${n.id}">Reason</label><input id="res-${n.id}" name="reason" type="text" required minlength="3" maxlength="1000" placeholder="Reason (audited)"><button type="submit" class="secondary">Mark resolved</button></form>`}
</section>`)}
<section class="card" aria-labelledby="pub-h">
<h2 id="pub-h">Publish a notice</h2>
<form method="post" action="/console/status">${csrfField(u.csrf)}
<div class="field"><label for="sn-title">Title</label><input id="sn-title" name="title" type="text" required minlength="3" maxlength="200"></div>
<div class="field"><label for="sn-body">Text</label><textarea id="sn-body" name="body" required minlength="3" maxlength="10000" rows="6"></textarea></div>
<div class="field"><label for="sn-sev">Severity</label><select id="sn-sev" name="severity"><option value="info">Information</option><option value="warning">Warning</option><option value="critical">Critical</option></select></div>
<button type="submit">Publish</button>
</form>
</section>`, req.query);
  });

  post<{ title: string; body: string; severity: 'info' | 'warning' | 'critical' }>('/console/status', 'publish a status notice', Type.Object({ csrf: Csrf, title: FormString(200), body: FormString(10_000), severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]) }, { additionalProperties: false }), () => '/console/status', async (u, b) => {
    if (b.title.trim().length < 3 || b.body.trim().length < 3) return 'error:invalid';
    await db.transaction().execute(async (trx) => {
      const n = await publishStatusNotice(trx, s.clock.now(), { title: b.title.trim(), body: b.body.trim(), severity: b.severity }, u.operator.name);
      await s.audit.record(trx, u.operator, 'status.publish', n.id, n.title);
    });
    return 'notice_published';
  });

  post<{ id: string; reason: string }>('/console/status/resolve', 'resolve a status notice', Type.Object({ csrf: Csrf, id: FormString(40), reason: Reason }, { additionalProperties: false }), () => '/console/status', async (u, b) => {
    const ok = await db.transaction().execute(async (trx) => {
      if (!(await resolveStatusNotice(trx, s.clock.now(), b.id))) return false;
      await s.audit.record(trx, u.operator, 'status.resolve', b.id, b.reason.trim());
      return true;
    });
    return ok ? 'notice_resolved' : 'error:not_found';
  });

  // --- audit ---------------------------------------------------------------------------------------

  get<Record<string, never>>('/console/audit', 'audit log', Type.Object({}, { additionalProperties: false }), async (u, _req, reply) => {
    const entries = await s.audit.list(200);
    return show(reply, u, 'audit', 'Audit log', html`<p>Every operator action, newest first: who, when, what, on what, and why.</p>
<div class="table-wrap"><table><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Why</th></tr></thead><tbody>
${entries.length ? entries.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.operator}</td><td><code>${e.action}</code></td><td><code class="wrap">${e.target}</code></td><td>${e.reason}</td></tr>`) : html`<tr><td colspan="5" class="hint">Nothing yet.</td></tr>`}
</tbody></table></div>`);
  });
}

function withQuery(path: string, key: string, value: string): string {
  const [base, hash] = path.split('#');
  return `${base}${base!.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}${hash ? `#${hash}` : ''}`;
}

/** The outbox held_reason of a hold's messages (as the outbound guard names them). */
function heldReasonOf(name: string): string {
  if (name.startsWith('blast:')) return `blast_radius:${name.slice(6)}`;
  if (name.startsWith('kill_switch:')) return name;
  return `breaker:${name}`;
}

/** An operator-readable account of why messages are held. */
function describeHold(name: string, reason: string | null, blastRadius: number): string {
  if (name.startsWith('blast:')) return `an operator action or job wants to mail more than ${blastRadius} recipients: the rest waits for approval`;
  if (name.startsWith('kill_switch:')) return 'paused by a kill switch';
  if (name.startsWith('flow:')) return reason ?? 'requests kept while the guard holds this flow';
  return reason ?? 'breaker';
}
