// startEmbeddedPostgres on its own: a cluster for a data directory inside a private (0700) directory
// as root, and starts that fail with their real cause rather than a generic one.
import { mkdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../src/platform/embedded-postgres.ts';
import { freePort } from '../helpers/ports.ts';
import { ensurePostgresStopped, makeTempDir, removeTempDir } from '../helpers/process.ts';

const isRoot = process.getuid?.() === 0;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await makeTempDir('branch-loans-pg-');
  cleanups.push(() => removeTempDir(dir));
  return dir;
}

/** Removes the cluster of `dataDir` once stopped, wherever that path leads. */
function removeClusterAfterTest(dataDir: string): void {
  cleanups.push(async () => {
    await ensurePostgresStopped(dataDir);
    await rm(await realpath(dataDir).catch(() => dataDir), { recursive: true, force: true });
  });
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('startEmbeddedPostgres', () => {
  // Only root runs PostgreSQL as another user, who cannot enter a 0700 directory of root's.
  it.skipIf(!isRoot)(
    'as root, keeps a cluster for a data directory inside a 0700 directory across restarts, changing no permission',
    async () => {
      const privateDir = await tempDir();
      expect(await modeOf(privateDir)).toBe(0o700);
      const dataDir = join(privateDir, 'postgres');
      removeClusterAfterTest(dataDir);
      const port = await freePort();

      const first = await startEmbeddedPostgres({ dataDir, port });
      cleanups.push(() => first.stop());
      expect(await query(first.adminUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await query(first.adminUrl, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)');
      await first.stop();
      expect(await modeOf(privateDir)).toBe(0o700);

      expect(first.dataDir.startsWith(`${privateDir}/`)).toBe(false);
      expect(await realpath(dataDir)).toBe(first.dataDir);
      const second = await startEmbeddedPostgres({ dataDir, port });
      cleanups.push(() => second.stop());
      expect(second.dataDir).toBe(first.dataDir);
      expect(await query(second.adminUrl, 'SELECT n FROM kept')).toEqual([{ n: 7 }]);
      await second.stop();
      expect(await modeOf(privateDir)).toBe(0o700);
    },
    60_000,
  );

  it.skipIf(!isRoot)(
    'as root, refuses an existing data directory the postgres user cannot reach, saying why',
    async () => {
      const privateDir = await tempDir();
      const dataDir = join(privateDir, 'postgres');
      await mkdir(dataDir);

      await expect(startEmbeddedPostgres({ dataDir, port: await freePort() })).rejects.toThrow(
        `${dataDir} is out of reach of the postgres user the embedded server runs as (it cannot enter ${privateDir})`,
      );
      expect(await modeOf(privateDir)).toBe(0o700);
    },
  );

  it('a start on a port that is already taken fails with PostgreSQL’s own reason', async () => {
    const dataDir = join(await tempDir(), 'postgres');
    removeClusterAfterTest(dataDir);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as { port: number }).port;

    await expect(startEmbeddedPostgres({ dataDir, port })).rejects.toThrow(
      'could not bind IPv4 address "127.0.0.1": Address already in use',
    );
  }, 60_000);

  it('a data directory below a regular file fails with the file system’s reason', async () => {
    const file = join(await tempDir(), 'not-a-directory');
    await writeFile(file, '');

    await expect(
      startEmbeddedPostgres({ dataDir: join(file, 'postgres'), port: await freePort() }),
    ).rejects.toThrow(`EEXIST: file already exists, mkdir '${file}'`);
  });
});
