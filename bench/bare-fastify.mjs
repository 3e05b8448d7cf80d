// The baseline: a bare Fastify route that parses a JSON body and answers 202, nothing else.
import Fastify from 'fastify';
const app = Fastify({ logger: false });
app.post('/api/v1/password-resets', async (req, reply) => reply.code(202).send({ status: 'accepted' }));
await app.listen({ port: Number(process.argv[2]), host: '127.0.0.1' });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
