import { performance } from 'node:perf_hooks';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Pool } from './database.ts';
import { pendingMigrations } from './migrations.ts';
import type { Lifecycle } from './shutdown.ts';

const ERROR_MESSAGE_LIMIT = 200;

const Healthy = Type.Object({
  status: Type.Literal('ok'),
  checks: Type.Object({ database: Type.Object({ status: Type.Literal('ok'), latency_ms: Type.Number() }) }),
  version: Type.String(),
  uptime_s: Type.Integer(),
});
const Unhealthy = Type.Object({
  status: Type.Literal('unavailable'),
  checks: Type.Object({ database: Type.Object({ status: Type.Literal('error'), message: Type.String() }) }),
  version: Type.String(),
  uptime_s: Type.Integer(),
});

/** A driver message without credentials or newlines, short enough for a health body. */
function safeMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text
    .replace(/postgres(ql)?:\/\/\S+/g, 'postgres://…')
    .replace(/\s+/g, ' ')
    .slice(0, ERROR_MESSAGE_LIMIT);
}

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
        tags: ['operations'],
        summary: 'Health, including a database round trip',
        description: '200 when the database answers `SELECT 1`, else 503 with the failing check.',
        response: { 200: Healthy, 503: Unhealthy },
      },
    },
    async (_request, reply) => {
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
        return reply.status(503).send({
          status: 'unavailable',
          checks: { database: { status: 'error', message: safeMessage(error) } },
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
        tags: ['operations'],
        summary: 'Ready for traffic',
        description:
          '503 while shutting down, while the database is unreachable or when migrations are pending.',
        response: {
          200: Type.Object({ status: Type.Literal('ready') }),
          503: Type.Object({ status: Type.Literal('not_ready'), reason: Type.String() }),
        },
      },
    },
    async (_request, reply) => {
      const notReady = (reason: string) => reply.status(503).send({ status: 'not_ready', reason });
      if (lifecycle.shuttingDown) return notReady('shutting down');
      try {
        const pending = await pendingMigrations(pool);
        if (pending.length > 0) return notReady(`migrations pending: ${pending.join(', ')}`);
      } catch (error) {
        return notReady(`database unreachable: ${safeMessage(error)}`);
      }
      return { status: 'ready' as const };
    },
  );
}
