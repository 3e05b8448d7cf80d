/**
 * Broadcasts held by the blast radius and the two-person rule (issue 13, item 11): whoever
 * created a held broadcast cannot release it alone while another operator exists, neither by
 * approving it nor through the breakers' release; FLOODGATE_APPROVALS=2 asks two operators.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { consoleAccess } from '../../web/console/index.js';

const PW = 'broadcast approvals passphrase 1';
const CLI = { id: 'cli', name: 'cli' };

describe.each(DIALECTS)('broadcast approvals on %s', (dialect) => {
  let h: Harness;
  afterEach(async () => { await h?.close(); });

  async function setup(env: Record<string, string> = {}): Promise<void> {
    h = await makeHarness(dialect, { env: { FLOODGATE_BLAST_RADIUS: '3', ...env } });
    for (let i = 0; i < 5; i++) await createUser(h, `bc${i}@example.test`, PW);
  }
  const named = async (name: string) => bearer((await h.s.operators.create(name)).token);
  const create = async (as: Record<string, string>) => {
    const audience = { emails: Array.from({ length: 5 }, (_, i) => `bc${i}@example.test`) };
    const r = await call(h.app, 'POST', '/api/v1/admin/broadcasts', { subject: 'You can ignore the reset emails', text: 'We sent them by mistake.', audience, reason: 'incident 7' }, as);
    expect(r.status).toBe(202);
    await h.s.courier.drain();
    expect(await h.s.broadcasts.get(r.json.id)).toMatchObject({ state: 'awaiting_approval', sent: 3, held: 2 });
    return r.json.id as string;
  };
  const approve = (id: string, as: Record<string, string>, reason = 'text reviewed') => call(h.app, 'POST', `/api/v1/admin/broadcasts/${id}/approve`, { reason }, as);
  const held = async (id: string) => (await h.s.broadcasts.get(id))!.held;
  const sentAfterDrain = async (id: string) => {
    await h.s.courier.drain();
    return (await h.s.broadcasts.get(id))!.sent;
  };

  it('refuses the creator\'s own approval while another operator exists; another operator releases it', async () => {
    await setup();
    const alice = await named('alice');
    const bob = await named('bob');
    const id = await create(alice);
    const own = await approve(id, alice, 'my own text is fine');
    expect(own).toMatchObject({ status: 403, json: { code: 'forbidden', reason: 'second_operator_required' } });
    expect(own.json.detail).toMatch(/another operator must approve it/);
    expect(await sentAfterDrain(id)).toBe(3);
    expect(await held(id)).toBe(2);

    const ok = await approve(id, bob, 'checked with legal');
    expect(ok).toMatchObject({ status: 200, json: { state: 'approved', approvedBy: 'bob', approvals: [{ by: 'bob' }], approvalsNeeded: 1 } });
    expect(await sentAfterDrain(id)).toBe(5);
    expect((await approve(id, bob)).status).toBe(409);
    const audit = (await call(h.app, 'GET', '/api/v1/admin/audit', undefined, admin)).json.entries.filter((e: any) => e.target === id || e.target.endsWith(`:broadcast:${id}`));
    expect(audit.map((e: any) => `${e.operator}:${e.action}:${e.reason}`)).toEqual(expect.arrayContaining([
      'alice:broadcast.create:incident 7', 'alice:broadcast.approve_refused:my own text is fine', 'bob:broadcast.approve:checked with legal', 'bob:breaker.release:checked with legal',
    ]));
    expect(audit.find((e: any) => e.action === 'broadcast.approve').data).toMatchObject({ approvals: 1, needed: 1, creator: false, released: true });
  });

  it('refuses to release a broadcast\'s blast hold as a breaker (the creator\'s side door); discarding stays open to anyone', async () => {
    await setup();
    const alice = await named('alice');
    const bob = await named('bob');
    const id = await create(alice);
    const hold = (await call(h.app, 'GET', '/api/v1/admin/breakers', undefined, alice)).json.breakers.find((b: any) => b.name.startsWith('blast:'));
    expect(hold).toMatchObject({ state: 'holding', held: 2 });
    const side = await call(h.app, 'POST', `/api/v1/admin/breakers/${hold.name}/release`, { reason: 'release my own broadcast' }, alice);
    expect(side).toMatchObject({ status: 409, json: { code: 'conflict', reason: 'broadcast_hold', broadcast: id } });
    // Not for anyone: a broadcast's hold is released by approving the broadcast.
    expect((await call(h.app, 'POST', `/api/v1/admin/breakers/${hold.name}/release`, { reason: 'release it' }, bob)).status).toBe(409);
    expect(await sentAfterDrain(id)).toBe(3);
    expect(await held(id)).toBe(2);
    const gone = await call(h.app, 'POST', `/api/v1/admin/breakers/${hold.name}/discard`, { reason: 'wrong text' }, alice);
    expect(gone).toMatchObject({ status: 200, json: { affected: 2 } });
    expect(await sentAfterDrain(id)).toBe(3);
  });

  it('counts console grants and named tokens as operators, not the bootstrap token nor revoked ones: alone, the creator may approve', async () => {
    await setup();
    // The bootstrap token alone: its creator approves (recorded as alone).
    const first = await create(admin);
    expect(await approve(first, admin)).toMatchObject({ status: 200, json: { state: 'approved' } });
    const entry = (await h.s.audit.list()).find((e) => e.action === 'broadcast.approve' && e.target === first);
    expect(entry?.data).toMatchObject({ creator: true, alone: true });

    // A console grant is another operator: now the bootstrap creator cannot approve alone.
    await createUser(h, 'console-op@example.test', PW);
    await consoleAccess(h.s).grant('console-op@example.test', CLI, 'test');
    const second = await create(admin);
    expect((await approve(second, admin)).status).toBe(403);
    await consoleAccess(h.s).revokeGrant('console-op@example.test', CLI, 'left');
    // A named operator whose token is revoked does not count either; a live one does.
    const carol = await named('carol');
    const third = await create(carol);
    await named('dave');
    expect((await approve(third, carol)).status).toBe(403);
    await h.s.operators.revoke('dave');
    expect(await approve(third, carol)).toMatchObject({ status: 200, json: { state: 'approved', approvedBy: 'carol' } });
    expect(await sentAfterDrain(third)).toBe(5);
    // The grant is gone, carol remains: the bootstrap creator still needs her; and the bootstrap token approves others' broadcasts.
    expect((await approve(second, admin)).status).toBe(403);
    expect(await approve(second, carol)).toMatchObject({ status: 200, json: { state: 'approved', approvedBy: 'carol' } });
    const fourth = await create(carol);
    expect(await approve(fourth, admin)).toMatchObject({ status: 200, json: { state: 'approved', approvedBy: 'bootstrap (FLOODGATE_ADMIN_TOKEN)' } });
  });

  it('with FLOODGATE_APPROVALS=2 needs two different operators (the creator may be one), one approval each, released once under concurrency', async () => {
    await setup({ FLOODGATE_APPROVALS: '2' });
    const alice = await named('alice');
    const bob = await named('bob');
    const carol = await named('carol');
    const id = await create(alice);
    const one = await approve(id, alice, 'first look');
    expect(one).toMatchObject({ status: 200, json: { state: 'awaiting_approval', approvals: [{ by: 'alice' }], approvalsNeeded: 2, approvedBy: null } });
    expect(await sentAfterDrain(id)).toBe(3);
    expect(await approve(id, alice, 'again')).toMatchObject({ status: 409, json: { reason: 'already_approved' } });
    expect(await held(id)).toBe(2);
    h.clock.advance(60_000);
    expect(await approve(id, bob, 'second look')).toMatchObject({ status: 200, json: { state: 'approved', approvedBy: 'alice, bob' } });
    expect(await sentAfterDrain(id)).toBe(5);

    // Two operators other than the creator, at the same moment: released once, every recipient mailed once.
    const id2 = await create(alice);
    const both = await Promise.all([approve(id2, bob), approve(id2, carol)]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    const view = await h.s.broadcasts.get(id2);
    expect(view).toMatchObject({ state: 'approved', approvals: [expect.anything(), expect.anything()] });
    expect(await sentAfterDrain(id2)).toBe(5);
    const mailed = await h.s.storage.db.selectFrom('outbox').select('recipient').where('idempotency_key', 'like', `broadcast:${id2}:%`).execute();
    expect(new Set(mailed.map((m) => m.recipient)).size).toBe(mailed.length);
    const releases = (await h.s.audit.list()).filter((e) => e.action === 'breaker.release' && e.target.endsWith(`:broadcast:${id2}`));
    expect(releases).toHaveLength(1);
  });
});
