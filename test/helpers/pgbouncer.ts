// A real PgBouncer (Debian's, 1.18) on loopback in transaction mode, in front of the test PostgreSQL.
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { type AppProcess, executablesMissing, removeTempDir, startProcess, waitFor } from './process.ts';

export const PGBOUNCER = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';
export const pgbouncerMissing = () =>
  executablesMissing([PGBOUNCER], 'install it with apt-get install pgbouncer (or set PGBOUNCER_BIN)');

export interface Pgbouncer {
  port: number;
  /** `url` (a URL of the PostgreSQL behind it) with PgBouncer's host and port instead. */
  through(url: string): string;
  process: AppProcess;
  stop(): Promise<void>;
}

/** Starts PgBouncer for every database of the server behind `adminUrl`, trusting every user (loopback only). */
export async function startPgbouncer(
  adminUrl: string,
  options: { poolSize?: number } = {},
): Promise<Pgbouncer> {
  const upstream = new URL(adminUrl);
  const port = await freePort();
  // Readable by the unprivileged user PgBouncer switches to when started as root.
  const dir = await mkdtemp(join(tmpdir(), 'branch-loans-pgbouncer-'));
  await chmod(dir, 0o755);
  const users = join(dir, 'users.txt');
  await writeFile(users, `"${decodeURIComponent(upstream.username) || 'postgres'}" ""\n`, { mode: 0o644 });
  const ini = join(dir, 'pgbouncer.ini');
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${users}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 10}`,
      'max_client_conn = 500',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const proc = startProcess(PGBOUNCER, args, process.env, dir);
  await waitFor('PgBouncer to listen', () => proc.stderr.some((line) => line.includes('process up')), {
    timeoutMs: 10_000,
  });
  return {
    port,
    through(url) {
      const pooled = new URL(url);
      pooled.hostname = '127.0.0.1';
      pooled.port = String(port);
      return pooled.href;
    },
    process: proc,
    async stop() {
      await proc.stop();
      await removeTempDir(dir);
    },
  };
}
