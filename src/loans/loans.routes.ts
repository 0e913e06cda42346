import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requestPath } from '../platform/http-errors.ts';
import { IdParams, problemResponses } from '../platform/schemas.ts';
import type { Outcome } from './idempotency.ts';
import type { CommandContext, LoanCommands } from './loan-commands.ts';
import { etagOf } from './loan-views.ts';
import {
  ActionHeaders,
  ActionHeadersKeyRequired,
  ApproveBody,
  CreateHeaders,
  CreateLoanBody,
  DisburseBody,
  ListLoansQuery,
  Loan,
  LoanEvent,
  QuoteQuery,
  ReasonBody,
  Repayment,
  RepaymentBody,
  ScheduleSchema,
} from './loans.schemas.ts';
import type { LoansService } from './loans.service.ts';

function commandContext(request: FastifyRequest): CommandContext {
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    actor: request.actor,
    requestId: request.id,
    method: request.method,
    path: requestPath(request),
    body: request.body,
    idempotencyKey: header('idempotency-key'),
    ifMatch: header('if-match'),
  };
}

function sendOutcome(reply: FastifyReply, outcome: Outcome): FastifyReply {
  const { status, headers, body } = outcome.response;
  reply.status(status).headers(headers);
  if (outcome.replayed) reply.header('idempotent-replayed', 'true');
  return reply.send(body);
}

/** Action bodies are optional where every field is: no body means `{}`. */
async function emptyBodyIsObject(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

const ACTION_ERRORS = problemResponses(400, 404, 409, 412, 415, 422);
const LIFECYCLE =
  'Every change runs as one conditional update in a transaction with its audit event. Any other action ' +
  'from the current state → 409 invalid-state-transition with `current_status` and `allowed_actions`. ' +
  'Send `If-Match: <etag>` to act only on the version you saw (412 otherwise). With an `Idempotency-Key`, ' +
  'the first outcome is stored and replayed byte for byte (`Idempotent-Replayed: true`).';

export const loansRoutes: FastifyPluginAsyncTypebox<{
  loans: LoansService;
  commands: LoanCommands;
  /** Origin for absolute Link headers (PUBLIC_BASE_URL); links are relative without it. */
  publicBaseUrl: string | undefined;
}> = async (app, { loans, commands, publicBaseUrl }) => {
  app.post(
    '/api/loans',
    {
      schema: {
        tags: ['loans'],
        summary: 'Apply for a loan',
        description:
          'Creates a loan in `pending`. `amount` must be > 0 and at most the configured maximum for the currency ' +
          '(50000 by default) with no more fraction digits than the currency has. Unknown fields are rejected. ' +
          'An optional `Idempotency-Key` makes retries safe.',
        headers: CreateHeaders,
        body: CreateLoanBody,
        response: { 201: Loan, ...problemResponses(400, 413, 415, 422) },
      },
    },
    async (request, reply) =>
      sendOutcome(reply, await commands.create(request.body, commandContext(request))),
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
      const row = await loans.load(request.params.id);
      return reply.header('etag', etagOf(row)).send(loans.view(row));
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
          '`Link: </api/loans?…&cursor=…>; rel="next"`, relative to this server unless it is configured with its ' +
          'public base URL (then absolute; never built from the Host header); the cursor is opaque and keyset-based, ' +
          'so pages stay consistent while loans are created. Unknown query parameters are rejected.',
        querystring: ListLoansQuery,
        response: { 200: Type.Array(Loan), ...problemResponses(400) },
      },
    },
    async (request, reply) => {
      const page = await loans.list(request.query);
      if (page.nextCursor) {
        const query = new URLSearchParams(request.url.split('?')[1]);
        query.set('limit', String(request.query.limit));
        query.set('cursor', page.nextCursor);
        reply.header('link', `<${publicBaseUrl ?? ''}/api/loans?${query}>; rel="next"`);
      }
      return page.rows.map(loans.view);
    },
  );

  const action = (
    name: string,
    summary: string,
    body: typeof ApproveBody | typeof ReasonBody | typeof DisburseBody,
    headers: typeof ActionHeaders | typeof ActionHeadersKeyRequired,
    run: (id: string, body: never, ctx: CommandContext) => Promise<Outcome>,
    optionalBody: boolean,
  ) =>
    app.post(
      `/api/loans/:id/${name}`,
      {
        preValidation: optionalBody ? emptyBodyIsObject : undefined,
        schema: {
          tags: ['lifecycle'],
          summary,
          description: LIFECYCLE,
          params: IdParams,
          headers,
          body,
          response: { 200: Loan, ...ACTION_ERRORS },
        },
      },
      async (request, reply) =>
        sendOutcome(reply, await run(request.params.id, request.body as never, commandContext(request))),
    );

  action('approve', 'Approve a pending loan', ApproveBody, ActionHeaders, commands.approve, true);
  action(
    'reject',
    'Reject a pending loan (reason required)',
    ReasonBody,
    ActionHeaders,
    commands.reject,
    false,
  );
  action(
    'disburse',
    'Disburse an approved loan; fixes its repayment schedule (Idempotency-Key required)',
    DisburseBody,
    ActionHeadersKeyRequired,
    commands.disburse,
    true,
  );
  action(
    'default',
    'Mark a disbursed loan as defaulted (reason required)',
    ReasonBody,
    ActionHeaders,
    commands.markDefaulted,
    false,
  );

  app.post(
    '/api/loans/:id/repayments',
    {
      schema: {
        tags: ['lifecycle'],
        summary: 'Record a repayment (Idempotency-Key required)',
        description:
          'Allowed on disbursed and defaulted loans. Allocated to the oldest installment first, interest before ' +
          'principal. The payment that clears the balance moves the loan to `repaid` in the same transaction. ' +
          'More than the outstanding balance → 422. ' +
          LIFECYCLE,
        params: IdParams,
        headers: ActionHeadersKeyRequired,
        body: RepaymentBody,
        response: { 201: Repayment, ...ACTION_ERRORS },
      },
    },
    async (request, reply) =>
      sendOutcome(
        reply,
        await commands.recordRepayment(request.params.id, request.body, commandContext(request)),
      ),
  );

  app.get(
    '/api/loans/:id/repayments',
    {
      schema: {
        tags: ['lifecycle'],
        summary: 'Repayments of a loan, oldest first',
        params: IdParams,
        response: { 200: Type.Array(Repayment), ...problemResponses(400, 404) },
      },
    },
    async (request) => loans.repayments(request.params.id),
  );

  app.get(
    '/api/loans/:id/schedule',
    {
      schema: {
        tags: ['lifecycle'],
        summary: 'Repayment schedule',
        description:
          'Equal monthly installments on a declining balance, half-even rounding to the minor unit, the last ' +
          'installment absorbing the residual. Fixed at disbursement; for a loan not yet disbursed, the schedule it ' +
          'would get if disbursed today. An installment is `overdue` from the day after its due date.',
        params: IdParams,
        response: { 200: ScheduleSchema, ...problemResponses(400, 404) },
      },
    },
    async (request) => loans.schedule(request.params.id),
  );

  app.get(
    '/api/loans/:id/events',
    {
      schema: {
        tags: ['lifecycle'],
        summary: 'Audit history of a loan, oldest first',
        description:
          'Every create, transition and repayment, written in the transaction of the change; never altered.',
        params: IdParams,
        response: { 200: Type.Array(LoanEvent), ...problemResponses(400, 404) },
      },
    },
    async (request) => loans.events(request.params.id),
  );

  app.get(
    '/api/loan-quote',
    {
      schema: {
        tags: ['lifecycle'],
        summary: 'Quote the schedule a new loan would get, without creating anything',
        querystring: QuoteQuery,
        response: { 200: ScheduleSchema, ...problemResponses(400) },
      },
    },
    async (request) => loans.quote(request.query),
  );
};
