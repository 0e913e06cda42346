import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static, TObject } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requestPath } from '../platform/http.ts';
import { problemResponse } from '../platform/http-errors.ts';
import { documentedProblem, IdParams, problemResponses } from '../platform/schemas.ts';
import { MAX_REPAYMENTS_PER_LOAN } from './allocation.ts';
import { requestFingerprint, type StoredResponse } from './idempotency.ts';
import {
  approveLoan,
  createLoan,
  defaultLoan,
  disburseLoan,
  type LoanResult,
  ONE_STATEMENT_COMMANDS,
  type RepaymentResult,
  recordRepayment,
  rejectLoan,
} from './loan-commands.ts';
import { CHECKER_ACTIONS, type LoanAction } from './loan-status.ts';
import type { Command, CommandRunner, LoanTransaction } from './loan-transaction.ts';
import { etagOf, repaymentView } from './loan-views.ts';
import {
  ActionHeaders,
  ActionHeadersKeyRequired,
  ApproveBody,
  CreateHeaders,
  CreateLoanBody,
  DisburseBody,
  ListLoansQuery,
  Loan,
  LoanEventList,
  LoanList,
  QuoteQuery,
  ReasonBody,
  Repayment,
  RepaymentBody,
  RepaymentList,
  ScheduleSchema,
} from './loans.schemas.ts';
import type { LoansService } from './loans.service.ts';

const JSON_TYPE = 'application/json; charset=utf-8';

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Runs a loan command for `request` and sends what `render` makes of its result. With an
 * Idempotency-Key, rendering happens inside the command's transaction and the bytes are stored with the
 * key, so a replay is the same answer byte for byte.
 */
async function perform<R>(
  runner: CommandRunner,
  request: FastifyRequest,
  reply: FastifyReply,
  command: Command<R>,
  render: (result: R) => StoredResponse,
  options: { oneStatement?: boolean } = {},
): Promise<void> {
  const caller = { actor: request.actor, requestId: request.id, ifMatch: header(request, 'if-match') };
  const key = header(request, 'idempotency-key');
  if (key === undefined) return send(reply, render(await runner.run(caller, command, options)), false);
  const path = requestPath(request);
  const outcome = await runner.runIdempotent(
    caller,
    { scope: request.actor, key, fingerprint: requestFingerprint(request.method, path, request.body) },
    command,
    render,
    (error) => problemResponse(error, path, request.id),
  );
  return send(reply, outcome.response, outcome.replayed);
}

function send(reply: FastifyReply, response: StoredResponse, replayed: boolean): void {
  reply.status(response.status).headers(response.headers);
  if (replayed) reply.header('idempotent-replayed', 'true');
  reply.send(response.body);
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
const REPAYMENTS_BOUND = MAX_REPAYMENTS_PER_LOAN.toLocaleString('en');
const MAKER_CHECKER =
  'Maker–checker: the API key that created the loan cannot take this decision (403); another key must.';
const MAKER_CHECKER_ERROR = {
  403: documentedProblem(403, 'Problem (403): the API key lacks the officer role, or it created this loan'),
};

export const loansRoutes: FastifyPluginAsyncTypebox<{
  loans: LoansService;
  commands: CommandRunner;
  /** Origin for absolute Link headers (PUBLIC_BASE_URL); links are relative without it. */
  publicBaseUrl: string | undefined;
}> = async (app, { loans, commands, publicBaseUrl }) => {
  /** The loan as GET shows it, through the route's response schema for `status`. */
  const loanResponse =
    (reply: FastifyReply, status: 200 | 201) =>
    ({ loan }: LoanResult): StoredResponse => {
      reply.code(status);
      const headers: Record<string, string> = { 'content-type': JSON_TYPE, etag: etagOf(loan) };
      if (status === 201) headers.location = `/api/loans/${loan.id}`;
      return { status, headers, body: reply.serialize(loans.view(loan)) as string };
    };

  /** An action on one loan; the command's body type must be the route's body schema's. */
  const action = <Body extends TObject>(
    name: Exclude<LoanAction, 'repayments'>,
    spec: {
      operationId: string;
      summary: string;
      body: Body;
      keyRequired: boolean;
      optionalBody: boolean;
    },
    command: (tx: LoanTransaction, id: string, body: Static<Body>) => Promise<LoanResult>,
  ) => {
    const checked = CHECKER_ACTIONS.includes(name);
    const runOptions = { oneStatement: ONE_STATEMENT_COMMANDS.has(command) };
    return app.post(
      `/api/loans/:id/${name}`,
      {
        config: { role: 'officer' },
        preValidation: spec.optionalBody ? emptyBodyIsObject : undefined,
        schema: {
          operationId: spec.operationId,
          tags: ['lifecycle'],
          summary: spec.summary,
          description: checked ? `${LIFECYCLE} ${MAKER_CHECKER}` : LIFECYCLE,
          params: IdParams,
          headers: spec.keyRequired ? ActionHeadersKeyRequired : ActionHeaders,
          body: spec.body,
          response: { 200: Loan, ...ACTION_ERRORS, ...(checked ? MAKER_CHECKER_ERROR : {}) },
        },
      },
      (request, reply) =>
        perform(
          commands,
          request,
          reply,
          (tx) => command(tx, request.params.id, request.body as Static<Body>),
          loanResponse(reply, 200),
          runOptions,
        ),
    );
  };

  const createOptions = { oneStatement: ONE_STATEMENT_COMMANDS.has(createLoan) };
  app.post(
    '/api/loans',
    {
      config: { role: 'clerk' },
      schema: {
        operationId: 'createLoan',
        tags: ['loans'],
        summary: 'Apply for a loan',
        description:
          'Creates a loan in `pending`. `amount` must be > 0 and at most the configured maximum for the currency ' +
          '(50000 by default) with no more fraction digits than the currency has. Unknown fields are rejected. ' +
          'An optional `Idempotency-Key` makes retries safe.',
        headers: CreateHeaders,
        body: CreateLoanBody,
        response: { 201: Loan, ...problemResponses(400, 409, 413, 415, 422) },
      },
    },
    (request, reply) =>
      perform(
        commands,
        request,
        reply,
        (tx) => createLoan(tx, request.body),
        loanResponse(reply, 201),
        createOptions,
      ),
  );

  app.get(
    '/api/loans/:id',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getLoan',
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
      config: { role: 'viewer' },
      schema: {
        operationId: 'listLoans',
        tags: ['loans'],
        summary: 'List loans, newest first',
        description:
          'A JSON array ordered by `created_at DESC, id DESC`. When more loans match, the response has ' +
          '`Link: </api/loans?…&cursor=…>; rel="next"`, relative to this server unless it is configured with its ' +
          'public base URL (then absolute; never built from the Host header); the cursor is opaque and keyset-based, ' +
          'so pages stay consistent while loans are created. Unknown query parameters are rejected.',
        querystring: ListLoansQuery,
        response: { 200: LoanList, ...problemResponses(400) },
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
      return page.loans;
    },
  );

  action(
    'approve',
    {
      operationId: 'approveLoan',
      summary: 'Approve a pending loan',
      body: ApproveBody,
      keyRequired: false,
      optionalBody: true,
    },
    approveLoan,
  );
  action(
    'reject',
    {
      operationId: 'rejectLoan',
      summary: 'Reject a pending loan (reason required)',
      body: ReasonBody,
      keyRequired: false,
      optionalBody: false,
    },
    rejectLoan,
  );
  action(
    'disburse',
    {
      operationId: 'disburseLoan',
      summary: 'Disburse an approved loan; fixes its repayment schedule (Idempotency-Key required)',
      body: DisburseBody,
      keyRequired: true,
      optionalBody: true,
    },
    disburseLoan,
  );
  action(
    'default',
    {
      operationId: 'defaultLoan',
      summary: 'Mark a disbursed loan as defaulted (reason required)',
      body: ReasonBody,
      keyRequired: false,
      optionalBody: false,
    },
    defaultLoan,
  );

  app.post(
    '/api/loans/:id/repayments',
    {
      config: { role: 'clerk' },
      schema: {
        operationId: 'recordRepayment',
        tags: ['lifecycle'],
        summary: 'Record a repayment (Idempotency-Key required)',
        description:
          'Allowed on disbursed and defaulted loans. Allocated to the oldest installment first, interest before ' +
          'principal. The payment that clears the balance moves the loan to `repaid` in the same transaction. ' +
          'More than the outstanding balance → 422. ' +
          `A loan takes at most ${REPAYMENTS_BOUND} repayments; the last must clear it (422 otherwise). ` +
          LIFECYCLE,
        params: IdParams,
        headers: ActionHeadersKeyRequired,
        body: RepaymentBody,
        response: { 201: Repayment, ...ACTION_ERRORS },
      },
    },
    (request, reply) =>
      perform(
        commands,
        request,
        reply,
        (tx) => recordRepayment(tx, request.params.id, request.body),
        ({ repayment, loan }: RepaymentResult): StoredResponse => {
          reply.code(201);
          return {
            status: 201,
            headers: {
              'content-type': JSON_TYPE,
              location: `/api/loans/${loan.id}/repayments`,
              etag: etagOf(loan),
            },
            body: reply.serialize(repaymentView(repayment, loan.currency)) as string,
          };
        },
      ),
  );

  app.get(
    '/api/loans/:id/repayments',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listRepayments',
        tags: ['lifecycle'],
        summary: 'Repayments of a loan, oldest first',
        description: `The whole list: a loan takes at most ${REPAYMENTS_BOUND} repayments.`,
        params: IdParams,
        response: { 200: RepaymentList, ...problemResponses(400, 404) },
      },
    },
    async (request) => loans.repayments(request.params.id),
  );

  app.get(
    '/api/loans/:id/schedule',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getSchedule',
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
      config: { role: 'viewer' },
      schema: {
        operationId: 'listLoanEvents',
        tags: ['lifecycle'],
        summary: 'Audit history of a loan, oldest first',
        description:
          'Every create, transition and repayment, written in the transaction of the change; never altered. ' +
          `The whole list: one event per repayment (at most ${REPAYMENTS_BOUND}) and at most five others.`,
        params: IdParams,
        response: { 200: LoanEventList, ...problemResponses(400, 404) },
      },
    },
    async (request) => loans.events(request.params.id),
  );

  app.get(
    '/api/loan-quote',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getLoanQuote',
        tags: ['lifecycle'],
        summary: 'Quote the schedule a new loan would get, without creating anything',
        querystring: QuoteQuery,
        response: { 200: ScheduleSchema, ...problemResponses(400) },
      },
    },
    async (request) => loans.quote(request.query),
  );
};
