// Staging as the README starts it: only a bootstrap key file, then real keys made with the CLI.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/platform/api-keys.ts';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { TERMS } from '../helpers/loans.ts';
import { freePort } from '../helpers/ports.ts';
import { type AppProcess, makeTempDir, removeTempDir, startServer } from '../helpers/process.ts';

const STARTUP_TIMEOUT = 60_000;
let db: TestDatabase;
let dir: string;
const running: AppProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await makeTempDir();
});
afterAll(async () => {
  for (const proc of running) await proc.stop();
  await removeTempDir(dir);
  await db.drop();
});

const staging = (vars: Record<string, string> = {}) => ({
  APP_ENV: 'staging',
  DATABASE_URL: db.url,
  ...vars,
});

async function keysCli(...args: string[]) {
  const result = await runCli('keys', args, staging());
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { id: string; key: string };
}

describe('staging from the README', () => {
  it('refuses to start without any key, naming what to do', async () => {
    const proc = startServer(staging({ PORT: String(await freePort()) }));
    running.push(proc);
    const exit = await proc.waitForExit(STARTUP_TIMEOUT);
    expect(exit.code).toBe(1);
    expect(proc.logs.at(-1)).toMatchObject({
      level: 'fatal',
      msg: expect.stringContaining(
        'startup failed: authentication is required and no active API key exists: set BOOTSTRAP_ADMIN_KEY_FILE',
      ),
    });
  });

  it('starts with a bootstrap key file; a clerk key applies, an officer key approves, everything else is refused', async () => {
    const file = join(dir, 'bootstrap_admin_key');
    await writeFile(file, `${generateKey('staging')}\n`, { mode: 0o600 });
    const port = await freePort();
    const proc = startServer(
      staging({ PORT: String(port), BOOTSTRAP_ADMIN_KEY_FILE: file, LOG_LEVEL: 'info' }),
    );
    running.push(proc);
    await proc.waitForLog((line) => line.msg?.startsWith('API: ') === true, STARTUP_TIMEOUT);

    const clerk = await keysCli('create', '--name', 'branch clerk', '--role', 'clerk', '--json');
    const officer = await keysCli('create', '--name', 'credit officer', '--role', 'officer', '--json');
    const api = (method: string, path: string, key?: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    const created = await api('POST', '/api/loans', clerk.key, TERMS);
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    expect((await api('GET', `/api/loans/${id}`)).status).toBe(401);
    expect((await api('POST', `/api/loans/${id}/approve`, clerk.key, {})).status).toBe(403);
    const approved = await api('POST', `/api/loans/${id}/approve`, officer.key, {});
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ id, status: 'approved' });

    // The officer's own application: maker–checker refuses its approval.
    const own = (await (await api('POST', '/api/loans', officer.key, TERMS)).json()) as { id: string };
    expect((await api('POST', `/api/loans/${own.id}/approve`, officer.key, {})).status).toBe(403);

    const events = (await (await api('GET', `/api/loans/${id}/events`, clerk.key)).json()) as {
      actor: string;
    }[];
    expect(events.map((event) => event.actor)).toEqual([clerk.id, officer.id]);
  });
});
