import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { requireOperator } from '../../http/auth.js';
import { problems } from '../../http/schemas.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Services } from '../../services.js';
import { FLOWS, type Flow } from './guard.js';
import { publicStatusNotices } from './status-notices.js';

const Reason = Type.String({ minLength: 3, maxLength: 1000, description: 'Why: kept in the audit log' });
const ModeT = Type.Union([Type.Literal('normal'), Type.Literal('challenge'), Type.Literal('hold')]);
const BreakerName = Type.String({ minLength: 3, maxLength: 200, pattern: '^[A-Za-z0-9_:.-]+$' });
const admin = { security: [{ operator: [] }], tags: ['admin'] };

export async function guardRoutes(app: App, s: Services): Promise<void> {
  app.get('/api/v1/admin/guard', {
    schema: { ...admin, summary: 'Guard modes, signals, baselines and top sources per flow', response: { 200: Type.Object({ store: Type.String(), flows: Type.Array(Type.Unknown()) }), ...problems(401) } },
  }, async (req) => {
    await requireOperator(s, req);
    return { store: s.guardStore.kind, flows: await Promise.all(FLOWS.map((f) => s.guard.view(f))) };
  });

  app.put('/api/v1/admin/guard/flows/:flow', {
    schema: {
      ...admin, summary: 'Override a flow\'s mode (null lifts the override)',
      params: Type.Object({ flow: Type.Union(FLOWS.map((f) => Type.Literal(f))) }),
      body: Type.Object({ mode: Type.Union([ModeT, Type.Null()]), reason: Reason }, { additionalProperties: false }),
      response: { 200: Type.Object({ flow: Type.String(), mode: Type.String() }), ...problems(400, 401) },
    },
  }, async (req) => {
    const op = await requireOperator(s, req);
    const flow = req.params.flow as Flow;
    await s.guard.override(flow, req.body.mode, op.name);
    await s.audit.record(s.storage.db, op, 'guard.override', `flow:${flow}`, req.body.reason, { mode: req.body.mode });
    return { flow, mode: await s.guard.mode(flow) };
  });

  app.get('/api/v1/admin/breakers', {
    schema: { ...admin, summary: 'Breakers and every hold, with the number of held messages', response: { 200: Type.Object({ breakers: Type.Array(Type.Object({ name: Type.String(), state: Type.String(), reason: Type.Union([Type.String(), Type.Null()]), trippedBy: Type.Union([Type.String(), Type.Null()]), trippedAt: Type.Union([Type.String(), Type.Null()]), held: Type.Integer() })) }), ...problems(401) } },
  }, async (req) => {
    await requireOperator(s, req);
    return { breakers: await s.outbound.breakers() };
  });

  for (const action of ['release', 'discard', 'trip'] as const) {
    app.post(`/api/v1/admin/breakers/:name/${action}`, {
      schema: {
        ...admin,
        summary: action === 'release' ? 'Release held messages (each goes out once) and close the breaker' : action === 'discard' ? 'Discard held messages (never sent) and close the breaker' : 'Trip a breaker by hand: further messages of its type and cause are held',
        params: Type.Object({ name: BreakerName }),
        body: Type.Object({ reason: Reason }, { additionalProperties: false }),
        response: { 200: Type.Object({ name: Type.String(), affected: Type.Integer() }), ...problems(400, 401, ...(action === 'release' ? [409] : [])) },
      },
    }, async (req) => {
      const op = await requireOperator(s, req);
      const name = req.params.name;
      if (action === 'trip') {
        if (!/^[a-z_]+:(anonymous|anonymous_pow|user|operator|job)$/.test(name)) throw new AppError('invalid_request', 'Breaker names are <message type>:<cause kind>.');
        await s.outbound.trip(name, req.body.reason, op);
        return { name, affected: 0 };
      }
      const affected = action === 'release' ? await s.outbound.release(name, op, req.body.reason) : await s.outbound.discard(name, op, req.body.reason);
      s.courierWake?.();
      return { name, affected };
    });
  }

  app.get('/api/v1/admin/kill-switches', {
    schema: { ...admin, summary: 'Kill switches in force', response: { 200: Type.Object({ killSwitches: Type.Array(Type.Unknown()) }), ...problems(401) } },
  }, async (req) => {
    await requireOperator(s, req);
    return { killSwitches: await s.outbound.listKillSwitches() };
  });

  app.put('/api/v1/admin/kill-switches/:name', {
    schema: {
      ...admin, summary: 'Pause a message type or flow, reroute it to the in-app inbox only, or resume it (action null)',
      params: Type.Object({ name: Type.String({ pattern: '^(type|flow):[a-z_]{1,40}$' }) }),
      body: Type.Object({ action: Type.Union([Type.Literal('pause'), Type.Literal('inbox_only'), Type.Null()]), reason: Reason }, { additionalProperties: false }),
      response: { 200: Type.Object({ killSwitches: Type.Array(Type.Unknown()) }), ...problems(400, 401) },
    },
  }, async (req) => {
    const op = await requireOperator(s, req);
    await s.outbound.setKillSwitch(req.params.name, req.body.action, op, req.body.reason);
    s.courierWake?.();
    return { killSwitches: await s.outbound.listKillSwitches() };
  });

  const BroadcastView = Type.Object({
    id: Type.String(), subject: Type.String(), state: Type.String(), recipients: Type.Integer(), createdBy: Type.String(), createdAt: Type.String(),
    approvedBy: Type.Union([Type.String(), Type.Null()]), approvedAt: Type.Union([Type.String(), Type.Null()]),
    approvals: Type.Array(Type.Object({ by: Type.String(), at: Type.String() }), { description: 'Who approved so far, oldest first' }),
    approvalsNeeded: Type.Integer({ description: 'FLOODGATE_APPROVALS: approvals that release it' }),
    sent: Type.Integer(), held: Type.Integer(), queued: Type.Integer(),
  });

  app.post('/api/v1/admin/broadcasts', {
    schema: {
      ...admin, summary: 'Send a security notice to users',
      description: 'Past FLOODGATE_BLAST_RADIUS recipients the rest is held until approved with POST /api/v1/admin/broadcasts/{id}/approve (by another operator than the creator when one exists; see FLOODGATE_APPROVALS).',
      body: Type.Object({
        subject: Type.String({ minLength: 1, maxLength: 200 }),
        text: Type.String({ minLength: 1, maxLength: 20_000 }),
        audience: Type.Union([Type.Literal('all'), Type.Object({ emails: Type.Array(Type.String({ maxLength: 320 }), { minItems: 1, maxItems: 10_000 }) }, { additionalProperties: false })]),
        reason: Type.Optional(Reason),
      }, { additionalProperties: false }),
      response: { 202: BroadcastView, ...problems(400, 401) },
    },
  }, async (req, reply) => {
    const op = await requireOperator(s, req);
    const b = await s.broadcasts.create(op, req.body, req.body.reason);
    s.courierWake?.();
    return reply.code(202).send(b);
  });

  app.get('/api/v1/admin/broadcasts', {
    schema: { ...admin, summary: 'Broadcasts, newest first, with delivery counts', response: { 200: Type.Object({ broadcasts: Type.Array(BroadcastView) }), ...problems(401) } },
  }, async (req) => {
    await requireOperator(s, req);
    return { broadcasts: await s.broadcasts.list() };
  });

  app.post('/api/v1/admin/broadcasts/:id/approve', {
    schema: {
      ...admin, summary: 'Approve a broadcast past the blast radius: held recipients get it, once each',
      description:
        'Two-person rule. With FLOODGATE_APPROVALS=1 (default) one approval releases it, but not its creator\'s while another operator exists ' +
        '(403 `forbidden`, `reason: "second_operator_required"`). With 2, two different operators must approve (the creator may be one): the first ' +
        'approval is recorded (200, still `awaiting_approval`). 409 `conflict` when it is not awaiting approval or you already approved. Every approval is audited.',
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 40 }) }),
      body: Type.Object({ reason: Reason }, { additionalProperties: false }),
      response: { 200: BroadcastView, ...problems(400, 401, 403, 404, 409) },
    },
  }, async (req) => {
    const op = await requireOperator(s, req);
    const b = await s.broadcasts.approve(req.params.id, op, req.body.reason);
    s.courierWake?.();
    return b;
  });

  app.get('/api/v1/admin/incidents', {
    schema: { ...admin, summary: 'Incidents, newest first, each classified (external flood, credential stuffing, internal bug, targeted resets, possible breach) with its evidence', response: { 200: Type.Object({ incidents: Type.Array(Type.Unknown()), evidence: Type.Unknown() }), ...problems(401) } },
  }, async (req) => {
    await requireOperator(s, req);
    return { incidents: await s.incidents.list(), evidence: await s.incidents.evidence() };
  });

  app.get('/api/v1/admin/audit', {
    schema: { ...admin, summary: 'Operator actions: who, when, what, why', response: { 200: Type.Object({ entries: Type.Array(Type.Unknown()) }), ...problems(401) } },
  }, async (req) => {
    await requireOperator(s, req);
    return { entries: await s.audit.list() };
  });

  const Notice = Type.Object({ id: Type.String(), title: Type.String(), body: Type.String(), severity: Type.String(), publishedAt: Type.String(), resolvedAt: Type.Union([Type.String(), Type.Null()]) });
  app.post('/api/v1/admin/status-notices', {
    schema: {
      ...admin, summary: 'Publish an incident notice on the public status page',
      body: Type.Object({ title: Type.String({ minLength: 3, maxLength: 200 }), body: Type.String({ minLength: 3, maxLength: 10_000 }), severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]) }, { additionalProperties: false }),
      response: { 201: Notice, ...problems(400, 401) },
    },
  }, async (req, reply) => {
    const op = await requireOperator(s, req);
    const now = s.clock.now();
    const id = newId(now);
    await s.storage.db.transaction().execute(async (trx) => {
      await trx.insertInto('status_notices').values({ id, title: req.body.title, body: req.body.body, severity: req.body.severity, published_at: now, resolved_at: null, created_by: op.name }).execute();
      await s.audit.record(trx, op, 'status.publish', id, req.body.title);
    });
    return reply.code(201).send({ id, title: req.body.title, body: req.body.body, severity: req.body.severity, publishedAt: new Date(now).toISOString(), resolvedAt: null });
  });

  app.post('/api/v1/admin/status-notices/:id/resolve', {
    schema: { ...admin, summary: 'Mark a status notice resolved', params: Type.Object({ id: Type.String({ maxLength: 40 }) }), body: Type.Object({ reason: Reason }, { additionalProperties: false }), response: { 204: Type.Null(), ...problems(401, 404) } },
  }, async (req, reply) => {
    const op = await requireOperator(s, req);
    const r = await s.storage.db.updateTable('status_notices').set({ resolved_at: s.clock.now() }).where('id', '=', req.params.id).where('resolved_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new AppError('not_found', 'No open notice has this id.');
    await s.audit.record(s.storage.db, op, 'status.resolve', req.params.id, req.body.reason);
    return reply.code(204).send(null);
  });

  app.get('/api/v1/status', {
    schema: { tags: ['status'], summary: 'Public incident notices (open first, then the last 30 days)', response: { 200: Type.Object({ notices: Type.Array(Notice) }) } },
  }, async () => ({ notices: await publicStatusNotices(s.storage.db, s.clock.now()) }));
}
