// The Dockerfile's runtime stage, reproduced without a container engine: the sources compiled with
// tsconfig.build.json (what `npm run build` runs in the build stage), laid out as the runtime stage copies
// them (compiled src/, package.json, migrations/) with the production dependencies installed by the
// Dockerfile's own `npm ci` line; then the image's CMD and HEALTHCHECK and the compose `migrate` command,
// read from those files, run against a real PostgreSQL.

import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/platform/api-keys.ts';
import { loadProject } from '../helpers/compose.ts';
import { createEmptyDatabase, type TestDatabase } from '../helpers/database.ts';
import { finalStage, fromFlag, keyword, stages, text } from '../helpers/dockerfile.ts';
import { freePort } from '../helpers/ports.ts';
import {
  type AppProcess,
  appEnv,
  makeTempDir,
  REPO_ROOT,
  removeTempDir,
  run,
  startProcess,
  waitFor,
} from '../helpers/process.ts';

const BUILD_TIMEOUT_MS = 180_000;
const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');

/** What the runtime stage runs, read from the Dockerfile. */
const runtime = (() => {
  const dockerfile = DockerfileParser.parse(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  const final = finalStage(dockerfile)!;
  const healthcheck = text(keyword(final, 'HEALTHCHECK').at(-1)!);
  // The `npm ci …` of the stage the runtime copies node_modules from.
  const copiesModules = keyword(final, 'COPY').find((copy) => text(copy).includes('node_modules'))!;
  const deps = stages(dockerfile).find((stage) => stage.name === fromFlag(copiesModules))!;
  const install = keyword(deps, 'RUN')
    .map(text)
    .find((run) => /\bnpm ci\b/.test(run))!;
  return {
    cmd: JSON.parse(text(keyword(final, 'CMD').at(-1)!)) as string[],
    healthcheck: JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD') + 3)) as string[],
    install: install.slice(install.indexOf('npm ci')).trim().split(/\s+/),
  };
})();
const migrateCommand = loadProject('production').services.migrate!.command!;

describe('the image runtime layout', () => {
  let dir: string;
  let app: string;
  let database: TestDatabase;

  const inImage = (command: string[], vars: Record<string, string>) => {
    expect(command[0]).toBe('node');
    return run(process.execPath, command.slice(1), { cwd: app, env: appEnv(vars), timeoutMs: 60_000 });
  };

  beforeAll(async () => {
    dir = await makeTempDir('branch-loans-image-');
    const build = await run(
      process.execPath,
      [TSC, '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')],
      {
        timeoutMs: BUILD_TIMEOUT_MS,
      },
    );
    expect(build.code, build.stdout + build.stderr).toBe(0);
    // As the runtime stage: COPY package.json package-lock.json, --from=build /app/dist/src ./src, migrations.
    app = join(dir, 'app');
    await mkdir(app);
    await rename(join(dir, 'dist/src'), join(app, 'src'));
    for (const file of ['package.json', 'package-lock.json', 'migrations']) {
      await cp(join(REPO_ROOT, file), join(app, file), { recursive: true });
    }
    // The production dependencies exactly as the image installs them (from npm's cache where it can).
    expect(runtime.install).toEqual(expect.arrayContaining(['npm', 'ci', '--omit=dev']));
    const install = await run(
      'npm',
      [...runtime.install.slice(1), '--prefer-offline', '--no-audit', '--no-fund'],
      { cwd: app, timeoutMs: BUILD_TIMEOUT_MS },
    );
    expect(install.code, install.stdout + install.stderr).toBe(0);
    database = await createEmptyDatabase();
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await database?.drop();
    if (dir) await removeTempDir(dir);
  });

  it('applies the migrations with the compose migrate command, and a second run changes nothing', async () => {
    const first = await inImage(migrateCommand, { DATABASE_URL: database.url });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const migrations = readdirSync(join(REPO_ROOT, 'migrations'))
      .sort()
      .map((file) => `applied migration ${file.replace(/\.sql$/, '')}`);
    expect(first.stdout.trim().split('\n')).toEqual(migrations);
    const second = await inImage(migrateCommand, { DATABASE_URL: database.url });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain('schema is up to date');
  });

  it('serves the API with the image CMD, passes its HEALTHCHECK, and drains on SIGTERM', async () => {
    const port = String(await freePort());
    // Production refuses to serve without a way to authenticate: the bootstrap key a deployment passes.
    const key = generateKey('prod');
    const vars = {
      APP_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: port,
      DATABASE_URL: database.url,
      BOOTSTRAP_ADMIN_KEY: key,
    };
    const server: AppProcess = startProcess(process.execPath, runtime.cmd.slice(1), appEnv(vars), app);
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor('the compiled server to be ready', () => fetch(`${base}/readiness`).then((r) => r.ok), {
        timeoutMs: 30_000,
      });
      expect((await inImage(runtime.healthcheck, { PORT: port })).code).toBe(0);
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      const created = await fetch(`${base}/api/loans`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({
          borrower_id: 'usr_image_1',
          amount: '15000.00',
          currency: 'INR',
          term_months: 12,
          interest_rate_apr: '18.50',
        }),
      });
      expect(created.status).toBe(201);
      expect(await created.json()).toMatchObject({ amount: '15000.00', status: 'pending' });

      server.signal('SIGTERM');
      expect(await server.waitForExit(30_000), server.output()).toEqual({ code: 0, signal: null });
      expect((await inImage(runtime.healthcheck, { PORT: port })).code).toBe(1);
    } finally {
      await server.stop();
    }
  });
});
