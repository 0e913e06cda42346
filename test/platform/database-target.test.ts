import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabaseTarget } from '../../src/platform/database-target.ts';
import { testConfig } from '../helpers/app.ts';
import { freePort } from '../helpers/ports.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function selectOne(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } finally {
    await client.end();
  }
}

describe('the embedded database target', () => {
  it('is shared with a second process (a CLI while the service runs) instead of failing on the locked directory', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bl-target-'));
    const dataDir = join(root, 'postgres');
    // No DATABASE_URL: the embedded server.
    const config = {
      ...testConfig({ EMBEDDED_PG_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) }),
      databaseUrl: undefined,
    };
    const owner = await openDatabaseTarget(config);
    cleanups.push(async () => {
      const cluster = await realpath(dataDir).catch(() => undefined);
      await owner.stop();
      if (cluster) await rm(cluster, { recursive: true, force: true });
      await rm(root, { recursive: true, force: true });
    });
    expect(owner.embedded).toBe(true);

    const messages: string[] = [];
    const second = await openDatabaseTarget(config, { log: (_details, message) => messages.push(message) });
    expect(second).toMatchObject({ url: owner.url, embedded: false });
    expect(messages).toEqual(['using the embedded PostgreSQL already running']);
    await second.stop();
    expect(await selectOne(owner.url)).toBe(1);
  });
});
