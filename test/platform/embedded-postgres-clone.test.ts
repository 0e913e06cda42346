// `npm start` as root from a clone in a private (0700) directory, such as root's home or a `mktemp -d`.
// PostgreSQL then runs as the postgres user, who cannot enter that directory: the server must still
// start, without changing the permissions of any directory it did not create, and say where its data is.
import { realpath, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyRepository } from '../helpers/clone.ts';
import { freePort } from '../helpers/ports.ts';
import {
  appEnv,
  ensurePostgresStopped,
  makeTempDir,
  removeTempDir,
  startProcess,
} from '../helpers/process.ts';

const STARTUP_TIMEOUT = 90_000;
const TEST_TIMEOUT = STARTUP_TIMEOUT + 60_000;
const SEEDED_LOANS = 5;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

/** Runs the clone's server until it serves the seeded loans, then stops it with SIGTERM. */
async function startAndStop(clone: string, dataDir: string, vars: Record<string, string> = {}) {
  const [port, pgPort] = [await freePort(), await freePort()];
  const server = startProcess(
    process.execPath,
    ['--import', 'tsx', 'src/server.ts'],
    appEnv({
      APP_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      EMBEDDED_PG_PORT: String(pgPort),
      LOG_LEVEL: 'info',
      SEED_ON_START: 'true',
      ...vars,
    }),
    clone,
  );
  cleanups.push(async () => {
    await server.stop();
    await ensurePostgresStopped(dataDir);
    // The cluster itself, wherever the configured path leads.
    await rm(await realpath(dataDir).catch(() => dataDir), { recursive: true, force: true });
  });
  await server.waitForLog((line) => line.msg?.startsWith('API: ') === true, STARTUP_TIMEOUT);
  const response = await fetch(`http://127.0.0.1:${port}/api/loans`);
  expect(response.status).toBe(200);
  expect(((await response.json()) as unknown[]).length).toBe(SEEDED_LOANS);
  server.signal('SIGTERM');
  expect(await server.waitForExit(30_000), server.output()).toEqual({ code: 0, signal: null });
  return server;
}

/** A copy of this repository in a fresh 0700 directory, removed after the test. */
async function privateClone(): Promise<{ privateDir: string; clone: string }> {
  const privateDir = await makeTempDir('branch-loans-clone-');
  cleanups.push(() => removeTempDir(privateDir));
  const clone = join(privateDir, 'branch-loans');
  await copyRepository(clone);
  return { privateDir, clone };
}

// Only root runs PostgreSQL as another user; anyone else owns every file of the clone.
describe.skipIf(process.getuid?.() !== 0)('as root, the server of a clone inside a 0700 directory', () => {
  it(
    'keeps its data out of the 0700 directory, says where on stdout, and changes no permission',
    async () => {
      const { privateDir, clone } = await privateClone();
      expect(await modeOf(privateDir)).toBe(0o700);
      const configured = join(clone, '.data', 'postgres');
      const server = await startAndStop(clone, configured);

      const starting = server.logs.find((line) => line.msg?.startsWith('starting embedded PostgreSQL'));
      const dataDir = starting?.dataDir as string;
      expect(starting?.msg).toBe(
        `starting embedded PostgreSQL with its data in ${dataDir}, linked from ${configured}: ` +
          `the postgres user it runs as cannot enter ${privateDir}`,
      );
      expect(dataDir.startsWith(`${privateDir}/`)).toBe(false);
      expect(await realpath(configured)).toBe(dataDir);
      expect(await modeOf(privateDir)).toBe(0o700);
    },
    TEST_TIMEOUT,
  );

  it(
    'starts on a data directory inside another 0700 directory, as the test setup does',
    async () => {
      const { privateDir, clone } = await privateClone();
      const otherPrivateDir = await makeTempDir('branch-loans-data-');
      cleanups.push(() => removeTempDir(otherPrivateDir));
      const configured = join(otherPrivateDir, 'postgres');
      await startAndStop(clone, configured, { EMBEDDED_PG_DATA_DIR: configured });

      expect(await modeOf(privateDir)).toBe(0o700);
      expect(await modeOf(otherPrivateDir)).toBe(0o700);
    },
    TEST_TIMEOUT,
  );
});
