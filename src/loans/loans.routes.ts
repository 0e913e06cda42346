import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { IdParams, problemResponses } from '../platform/schemas.ts';
import { CreateLoanBody, ListLoansQuery, Loan } from './loans.schemas.ts';
import { etagOf, type LoansService, toLoan } from './loans.service.ts';

export const loansRoutes: FastifyPluginAsyncTypebox<{ loans: LoansService }> = async (app, { loans }) => {
  app.post(
    '/api/loans',
    {
      schema: {
        tags: ['loans'],
        summary: 'Apply for a loan',
        description:
          'Creates a loan in `pending`. `amount` must be > 0 and at most the configured maximum for the currency ' +
          '(50000 by default) with no more fraction digits than the currency has. Unknown fields are rejected.',
        body: CreateLoanBody,
        response: { 201: Loan, ...problemResponses(400, 413, 415) },
      },
    },
    async (request, reply) => {
      const row = await loans.create(request.body);
      return reply
        .status(201)
        .header('location', `/api/loans/${row.id}`)
        .header('etag', etagOf(row))
        .send(toLoan(row));
    },
  );

  app.get(
    '/api/loans/:id',
    {
      schema: {
        tags: ['loans'],
        summary: 'Get a loan',
        params: IdParams,
        response: { 200: Loan, ...problemResponses(400, 404) },
      },
    },
    async (request, reply) => {
      const row = await loans.get(request.params.id);
      return reply.header('etag', etagOf(row)).send(toLoan(row));
    },
  );

  app.get(
    '/api/loans',
    {
      schema: {
        tags: ['loans'],
        summary: 'List loans, newest first',
        description:
          'A JSON array ordered by `created_at DESC, id DESC`. When more loans match, the response has ' +
          '`Link: <…/api/loans?…&cursor=…>; rel="next"` with an absolute URL; the cursor is opaque and keyset-based, ' +
          'so pages stay consistent while loans are created. Unknown query parameters are rejected.',
        querystring: ListLoansQuery,
        response: { 200: Type.Array(Loan), ...problemResponses(400) },
      },
    },
    async (request, reply) => {
      const page = await loans.list(request.query);
      if (page.nextCursor) {
        const next = new URL(request.url, `${request.protocol}://${request.host}`);
        next.searchParams.set('limit', String(request.query.limit));
        next.searchParams.set('cursor', page.nextCursor);
        reply.header('link', `<${next.href}>; rel="next"`);
      }
      return page.rows.map(toLoan);
    },
  );
};
