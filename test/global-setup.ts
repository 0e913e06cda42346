// One PostgreSQL for the run: the server in DATABASE_URL, or an embedded one in a temporary directory.
// Migrations run once into a template database; every test file clones it (CREATE DATABASE … TEMPLATE).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { withDatabase } from '../src/platform/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/platform/embedded-postgres.ts';
import { migrateUp } from '../src/platform/migrations.ts';
import { freePort } from './helpers/ports.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
    databaseKind: 'server' | 'embedded';
  }
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | undefined;
  let dataRoot: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    dataRoot = await mkdtemp(join(tmpdir(), 'branch-loans-test-'));
    embedded = await startEmbeddedPostgres({ dataDir: join(dataRoot, 'postgres'), port: await freePort() });
    adminUrl = embedded.adminUrl;
  }

  const templateDb = `bl_template_${process.pid}`;
  await admin(adminUrl, `DROP DATABASE IF EXISTS ${templateDb}`);
  await admin(adminUrl, `CREATE DATABASE ${templateDb}`);
  await migrateUp(withDatabase(adminUrl, templateDb));

  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
  project.provide('databaseKind', embedded ? 'embedded' : 'server');

  return async () => {
    await admin(adminUrl, `DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`);
    await embedded?.stop();
    // As root the cluster may live outside dataRoot (see src/platform/embedded-postgres-locations.ts).
    if (embedded) await rm(embedded.dataDir, { recursive: true, force: true });
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  };
}
