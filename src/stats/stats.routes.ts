import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses } from '../platform/schemas.ts';
import { Stats, StatsQuery } from './stats.schemas.ts';
import type { StatsService } from './stats.service.ts';

export const statsRoutes: FastifyPluginAsyncTypebox<{ stats: StatsService }> = async (app, { stats }) => {
  app.get(
    '/api/stats',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getStats',
        tags: ['stats'],
        summary: 'Portfolio statistics',
        description:
          'Counts by status (every status, zero-filled) and by currency; money per currency, never summed across ' +
          'currencies. `total_amount` and `avg_amount` cover every loan of the currency whatever its status; ' +
          '`avg_amount` is rounded half-even to the minor unit. Served from maintained aggregates, so its cost ' +
          'does not grow with the number of loans. `?currency=` narrows everything to one currency.',
        querystring: StatsQuery,
        response: { 200: Stats, ...problemResponses(400) },
      },
    },
    async (request) => stats.get(request.query.currency),
  );
};
