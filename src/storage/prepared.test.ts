import { afterAll, describe, expect, it } from 'vitest';
import { DIALECTS, openTestStorage, type TestStorage } from '../../test/helpers/harness.js';
import { prepared } from './prepared.js';

const opened: TestStorage[] = [];
afterAll(async () => { for (const s of opened) await s.drop(); });

const insert = prepared((db, id: string, userId: string | null, at: number, data: string) =>
  db.insertInto('security_events').values({ id, user_id: userId, type: 'signin.succeeded', at, ip: null, device: null, request_id: null, data }));
const byType = prepared((db, at: number) => db.selectFrom('security_events').select(['id', 'user_id', 'data']).where('type', '=', 'signin.succeeded').where('at', '>=', at).orderBy('id').limit(10));

describe.each(DIALECTS)('prepared queries on %s', (dialect) => {
  it('compiles once and runs with fresh arguments each time, inside and outside transactions', async () => {
    const s = await openTestStorage(dialect);
    opened.push(s);
    await insert(s.storage.db, 'ev1', null, 100, '{"a":1}');
    await s.storage.db.transaction().execute(async (trx) => {
      await insert(trx, 'ev2', null, 200, '{"b":2}');
      expect((await byType(trx, 150)).map((r) => r.id)).toEqual(['ev2']);
    });
    expect(await byType(s.storage.db, 0)).toEqual([{ id: 'ev1', user_id: null, data: '{"a":1}' }, { id: 'ev2', user_id: null, data: '{"b":2}' }]);
    expect(await byType(s.storage.db, 201)).toEqual([]);
    // A rolled-back transaction leaves nothing behind.
    await expect(s.storage.db.transaction().execute(async (trx) => {
      await insert(trx, 'ev3', null, 300, '{}');
      throw new Error('roll back');
    })).rejects.toThrow('roll back');
    expect((await byType(s.storage.db, 0)).map((r) => r.id)).toEqual(['ev1', 'ev2']);
  });

  it('refuses a query in which an argument does not become a parameter', async () => {
    const s = await openTestStorage(dialect);
    opened.push(s);
    const wrong = prepared((db, _unused: string) => db.selectFrom('security_events').select('id'));
    await expect(wrong(s.storage.db, 'x')).rejects.toThrow(/argument 0 did not become a parameter/);
  });
});
