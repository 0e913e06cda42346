// Throwaway PostgreSQL clusters made with Debian's PostgreSQL 15 server binaries on free loopback ports:
// a primary from initdb and a streaming standby from `pg_basebackup -R`. PostgreSQL refuses to run as
// root, so as root every command runs as the `postgres` system user, in a directory it owns.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';
import { ensurePostgresStopped, executablesMissing, removeTempDir, waitFor } from './process.ts';

export const POSTGRES_BIN_DIR = process.env.POSTGRES_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
const bin = (name: string) => join(POSTGRES_BIN_DIR, name);

/** The uid and gid to run PostgreSQL as: the `postgres` user when root, else ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith('postgres:'));
  const [, , uid, gid] = entry?.split(':') ?? [];
  return entry ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

/** Why clusters cannot be made here, or undefined when they can. */
export function postgresClusterMissing(): string | undefined {
  const install = 'install it with apt-get install postgresql-15 (or set POSTGRES_BIN_DIR)';
  const missing = executablesMissing(['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'].map(bin), install);
  if (missing) return missing;
  if (process.getuid?.() === 0 && runAs() === undefined) return `no postgres system user: ${install}`;
  return undefined;
}

/** Runs a PostgreSQL program as the cluster owner; rejects with its output unless it exits 0. */
function pgCommand(name: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<string> {
  const owner = runAs();
  return new Promise((resolve, reject) => {
    const child = spawn(bin(name), args, {
      cwd,
      // The server's environment: no PG* variables from the shell that runs the tests.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      ...owner,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.once('error', reject);
    child.once('close', (code, signal) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${name} ${args.join(' ')} failed (${code ?? signal}):\n${output}`)),
    );
  });
}

export interface Cluster {
  port: number;
  dataDir: string;
  logFile: string;
  /** A URL of database `name` on this cluster, as the superuser `postgres`. */
  url(name?: string): string;
  /** What the server logged so far. */
  log(): Promise<string>;
  /** `pg_ctl stop -m fast`, then kills it if it is still running; safe to call twice. */
  stop(): Promise<void>;
}

/** A directory of clusters; `stop` stops every cluster made in it and removes it. */
export interface ClusterSet {
  primary(): Promise<Cluster>;
  /** A hot standby streaming from `primary`, made with `pg_basebackup -R`, running and accepting reads. */
  standby(primary: Cluster, name?: string): Promise<Cluster>;
  stop(): Promise<void>;
}

export async function createClusterSet(): Promise<ClusterSet> {
  const root = await mkdtemp(join(tmpdir(), 'branch-loans-clusters-'));
  const owner = runAs();
  if (owner) await chown(root, owner.uid, owner.gid);
  const clusters: Cluster[] = [];

  const settings = (port: number) =>
    [
      '',
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${root}'`,
      'wal_level = replica',
      'max_wal_senders = 4',
      'hot_standby = on',
      // Throwaway clusters: durability buys nothing here.
      'fsync = off',
      '',
    ].join('\n');

  const start = async (name: string, port: number): Promise<Cluster> => {
    const dataDir = join(root, name);
    const logFile = join(root, `${name}.log`);
    const cluster: Cluster = {
      port,
      dataDir,
      logFile,
      url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
      log: () => readFile(logFile, 'utf8').catch(() => ''),
      async stop() {
        await pgCommand('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], root).catch(
          () => {},
        );
        await ensurePostgresStopped(dataDir, 5_000);
      },
    };
    clusters.push(cluster);
    await pgCommand('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60'], root).catch(
      async (error: Error) => {
        throw new Error(`${error.message}\n${await cluster.log()}`);
      },
    );
    return cluster;
  };

  return {
    async primary() {
      const port = await freePort();
      const dataDir = join(root, `primary-${port}`);
      await pgCommand(
        'initdb',
        ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
        root,
      );
      await appendFile(join(dataDir, 'postgresql.conf'), settings(port));
      // Trust on loopback only, for sessions and for replication.
      await writeFile(
        join(dataDir, 'pg_hba.conf'),
        [
          'local all all trust',
          'host all all 127.0.0.1/32 trust',
          'host replication all 127.0.0.1/32 trust',
          '',
        ].join('\n'),
      );
      return start(`primary-${port}`, port);
    },

    async standby(primary, name = 'standby') {
      const port = await freePort();
      const dataDir = join(root, `${name}-${port}`);
      await pgCommand(
        'pg_basebackup',
        [
          ...['-D', dataDir, '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'],
          ...['-R', '-X', 'stream', '--checkpoint=fast', '--no-sync'],
        ],
        root,
      );
      // The copy carries the primary's settings; the last `port` line wins.
      await appendFile(join(dataDir, 'postgresql.conf'), `\nport = ${port}\n`);
      return start(`${name}-${port}`, port);
    },

    async stop() {
      // Standbys first, so they do not log a lost primary.
      for (const cluster of clusters.splice(0).reverse()) await cluster.stop();
      await removeTempDir(root);
    },
  };
}

/** One value from `sql` on `cluster`, on a connection of its own. */
export async function queryValue<T>(cluster: Cluster, sql: string, values: unknown[] = []): Promise<T> {
  const client = new pg.Client({ connectionString: cluster.url(), application_name: 'test-monitor' });
  await client.connect();
  try {
    return (await client.query<{ value: T }>(sql, values)).rows[0]!.value;
  } finally {
    await client.end();
  }
}

/** Waits until `standby` has replayed every WAL record `primary` has made so far, flushed or not. */
export async function waitForReplay(primary: Cluster, standby: Cluster, timeoutMs = 15_000): Promise<void> {
  const target = await queryValue<string>(primary, 'SELECT pg_current_wal_insert_lsn()::text AS value');
  await waitFor(
    `the standby on ${standby.port} to replay up to ${target}`,
    () => queryValue<boolean>(standby, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS value', [target]),
    { timeoutMs },
  );
}
