// The sign-in bench's bare route, in a process of its own like the service: a Fastify route that
// parses the same body and verifies the password through Floodgate's hash threads (the same
// PasswordHasher), answering 201 with a body of the service's size. No guard, no database.
// Usage: node bench/bare-signin.mjs PORT PHC
import Fastify from 'fastify';
import { PasswordHasher } from '../dist/modules/accounts/password-hasher.js';

const [port, phc] = process.argv.slice(2);
const hc = process.env.FLOODGATE_HASH_CONCURRENCY;
const hasher = new PasswordHasher(undefined, hc ? { concurrency: Number(hc) } : {});
const app = Fastify({ logger: false });
app.post('/api/v1/sessions', async (req, reply) => {
  const r = await hasher.verify(phc, req.body.password);
  return reply.code(r.ok ? 201 : 401).send({ token: 'x'.repeat(60), expiresAt: new Date().toISOString(), sessionId: 'bare' });
});
await app.listen({ port: Number(port), host: '127.0.0.1' });
process.send?.('ready');
process.on('SIGTERM', () => app.close().then(() => hasher.close()).then(() => process.exit(0)));
