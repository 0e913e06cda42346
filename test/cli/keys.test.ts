// npm run keys -- create | list | revoke, run as a process on a database of its own (DATABASE_URL).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const keys = (...args: string[]) => runCli('keys', args, { DATABASE_URL: db.url });

async function storedRows() {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query('SELECT * FROM api_keys')).rows;
  } finally {
    await client.end();
  }
}

describe('npm run keys', () => {
  let created: { id: string; name: string; role: string; prefix: string; key: string };

  it('creates a key and prints its secret once, as one JSON line with --json', async () => {
    const result = await keys('create', '--name', 'ops laptop', '--role', 'officer', '--json');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    created = JSON.parse(lines[0]!);
    expect(Object.keys(created)).toEqual(['id', 'name', 'role', 'prefix', 'key']);
    expect(created).toMatchObject({ name: 'ops laptop', role: 'officer' });
    expect(created.key).toMatch(/^bl_test_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(created.prefix)).toBe(true);

    const [row] = await storedRows();
    expect(row.prefix).toBe(created.prefix);
    expect(JSON.stringify(row)).not.toContain(created.key.slice(created.prefix.length));
  });

  it('creates a key that expires, in plain text without --json', async () => {
    const result = await keys('create', '--name', 'temp', '--role', 'viewer', '--expires-in-days', '7');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^[0-9a-f-]{36} {2}bl_test_\S{8} {2}viewer {3}temp {2}\(created \S+, last used -, expires \S+\)\n/,
    );
    expect(result.stdout).toMatch(
      /\nsecret \(shown only now, store it safely\): bl_test_[A-Za-z0-9_-]{43}\n$/,
    );
  });

  it('lists keys without their secrets or hashes', async () => {
    const result = await keys('list', '--json');
    expect(result.code).toBe(0);
    const listed = JSON.parse(result.stdout);
    expect(listed.map((key: { name: string }) => key.name)).toEqual(['ops laptop', 'temp']);
    expect(Object.keys(listed[0]).sort()).toEqual(
      ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix', 'revoked_at', 'role'].sort(),
    );
    expect(result.stdout).not.toContain(created.key);
  });

  it('revokes a key by id, and says when there is no such key', async () => {
    const result = await keys('revoke', created.id);
    expect(result).toMatchObject({
      code: 0,
      stdout: `revoked ${created.id}; running services refuse it within 5 seconds\n`,
    });
    const listed = JSON.parse((await keys('list', '--json')).stdout);
    expect(listed[0].revoked_at).not.toBeNull();
    const missing = await keys('revoke', '00000000-0000-0000-0000-000000000000');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('keys: no API key has the id 00000000-0000-0000-0000-000000000000');
  });

  it.each([
    [['create', '--name', 'x', '--role', 'root'], '--role must be one of viewer, clerk, officer, admin'],
    [['create', '--role', 'viewer'], '--name must be 1–100 characters'],
    [
      ['create', '--name', 'x', '--role', 'viewer', '--expires-in-days', '0'],
      '--expires-in-days must be an integer from 1 to 3650 (got "0")',
    ],
    [['revoke', 'abc'], 'revoke needs the id of a key (a UUID)'],
    [['rotate'], 'unknown command "rotate"'],
    [[], 'a command is required'],
  ])('refuses %j with exit code 2', async (args, message) => {
    const result = await keys(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`^keys: ${message.replace(/[()[\]|.*+?]/g, '\\$&')}; usage: npm run keys -- create`),
    );
  });
});
