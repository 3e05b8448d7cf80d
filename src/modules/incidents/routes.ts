import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { requireUser } from '../../http/auth.js';
import { problems } from '../../http/schemas.js';
import type { Services } from '../../services.js';

export async function incidentsRoutes(app: App, s: Services): Promise<void> {
  app.get('/api/v1/me/security-events', {
    schema: {
      tags: ['me'], summary: 'My security events, newest first', security: [{ session: [] }],
      querystring: Type.Object({ before: Type.Optional(Type.String({ maxLength: 40 })), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }, { additionalProperties: false }),
      response: {
        200: Type.Object({ events: Type.Array(Type.Object({ id: Type.String(), type: Type.String(), at: Type.String(), ip: Type.Union([Type.String(), Type.Null()]), device: Type.Union([Type.String(), Type.Null()]), requestId: Type.Union([Type.String(), Type.Null()]), data: Type.Record(Type.String(), Type.Unknown()) })) }),
        ...problems(400, 401),
      },
    },
  }, async (req) => {
    const p = await requireUser(s, req);
    const limit = Math.min(200, Math.max(1, Number(req.query.limit ?? 50)));
    return { events: await s.events.listForUser(s.storage.db, p.userId, limit, req.query.before) };
  });
}
