import { performance } from 'node:perf_hooks';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Pool } from './database.ts';
import type { Lifecycle } from './lifecycle.ts';
import { pendingMigrations } from './migrations.ts';

const Version = Type.String({ pattern: '^[0-9A-Za-z.+-]+$', maxLength: 64 });
const UptimeSeconds = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Healthy = Type.Object({
  status: Type.Literal('ok'),
  checks: Type.Object({ database: Type.Object({ status: Type.Literal('ok'), latency_ms: Type.Number() }) }),
  version: Version,
  uptime_s: UptimeSeconds,
});
const Unhealthy = Type.Object({
  status: Type.Literal('unavailable'),
  checks: Type.Object({
    database: Type.Object({ status: Type.Literal('error'), message: Type.String({ maxLength: 200 }) }),
  }),
  version: Version,
  uptime_s: UptimeSeconds,
});

// The probes are public: a driver's message (host names, ports, roles) goes to the log, never to a body.
const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function registerHealthRoutes(
  app: FastifyInstance,
  deps: { config: Config; pool: Pool; lifecycle: Lifecycle },
) {
  const { config, pool, lifecycle } = deps;
  const startedAt = performance.now();

  app.get(
    '/health',
    {
      schema: {
        operationId: 'getHealth',
        tags: ['operations'],
        summary: 'Health, including a database round trip',
        description: '200 when the database answers `SELECT 1`, else 503 with the failing check.',
        response: { 200: Healthy, 503: Unhealthy },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      try {
        await pool.query('SELECT 1');
        const latency = Math.round((performance.now() - started) * 100) / 100;
        return {
          status: 'ok',
          checks: { database: { status: 'ok', latency_ms: latency } },
          version: config.version,
          uptime_s: Math.floor((performance.now() - startedAt) / 1000),
        };
      } catch (error) {
        request.log.warn({ reason: reasonOf(error) }, 'health check: database unavailable');
        return reply.status(503).send({
          status: 'unavailable',
          checks: { database: { status: 'error', message: 'database unavailable' } },
          version: config.version,
          uptime_s: Math.floor((performance.now() - startedAt) / 1000),
        });
      }
    },
  );

  app.get(
    '/liveness',
    {
      schema: {
        operationId: 'getLiveness',
        tags: ['operations'],
        summary: 'The process is alive (never touches the database)',
        response: { 200: Type.Object({ status: Type.Literal('alive') }) },
      },
    },
    async () => ({ status: 'alive' }),
  );

  app.get(
    '/readiness',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['operations'],
        summary: 'Ready for traffic',
        description:
          '503 while shutting down, while the database is unreachable or when migrations are pending.',
        response: {
          200: Type.Object({ status: Type.Literal('ready') }),
          // The reason may list the pending migrations by name.
          503: Type.Object({ status: Type.Literal('not_ready'), reason: Type.String({ maxLength: 4096 }) }),
        },
      },
    },
    async (request, reply) => {
      const notReady = (reason: string) => reply.status(503).send({ status: 'not_ready', reason });
      if (lifecycle.shuttingDown) return notReady('shutting down');
      try {
        const pending = await pendingMigrations(pool);
        if (pending.length > 0) return notReady(`migrations pending: ${pending.join(', ')}`);
      } catch (error) {
        request.log.warn({ reason: reasonOf(error) }, 'readiness check: database unreachable');
        return notReady('database unreachable');
      }
      if (lifecycle.starting) return notReady('starting');
      return { status: 'ready' as const };
    },
  );
}
