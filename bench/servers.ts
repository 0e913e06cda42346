// The two servers under test, each in a process of its own on a loopback port, so that neither shares an
// event loop with the load generator. The service runs as its image does: compiled (tsc) into a directory
// laid out like /app (src/, migrations/, package.json, node_modules/), started with `node src/server.js`
// and configured by its environment. The baseline is forked from its TypeScript source.
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { open, readFile, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export interface Server {
  /** `workers`: the service with WEB_CONCURRENCY workers. */
  name: 'service' | 'workers' | 'baseline';
  url: string;
  child: ChildProcess;
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BASELINE = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Compiles the service into `dir` and lays the directory out as the image's /app; returns it. */
export async function buildService(dir: string): Promise<string> {
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  await promisify(execFile)(tsc, [
    '-p',
    join(ROOT, 'tsconfig.build.json'),
    '--outDir',
    dir,
    '--sourceMap',
    'false',
  ]);
  for (const entry of ['package.json', 'migrations', 'node_modules']) {
    await symlink(join(ROOT, entry), join(dir, entry));
  }
  return dir;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || !address) throw new Error('no free port');
  return address.port;
}

function exitedEarly(name: string, child: ChildProcess): Promise<never> {
  return new Promise((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before it was ready`)),
    ),
  );
}

async function ready(url: string, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const polling = (async () => {
    while (Date.now() < deadline) {
      const status = await fetch(`${url}/readiness`).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${name} not ready within ${START_TIMEOUT_MS / 1000} s`);
  })();
  await Promise.race([polling, exitedEarly(name, child)]);
}

/**
 * The compiled service in `appDir` on the run's database, configured as in production with
 * `environment` on top; its log lines (one a request at info) go to `logFile`.
 */
export async function startService(
  name: 'service' | 'workers',
  appDir: string,
  environment: Record<string, string>,
  logFile: string,
): Promise<Server> {
  const port = await freePort();
  const log = await open(logFile, 'a');
  const child = track(
    spawn(process.execPath, ['src/server.js'], {
      cwd: appDir,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        APP_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        ...environment,
      },
      stdio: ['ignore', log.fd, log.fd],
    }),
  );
  await log.close();
  const url = `http://127.0.0.1:${port}`;
  await ready(url, child, name);
  return { name, url, child };
}

/** The bare baseline, forked with these command-line arguments; it reports its port over IPC. */
export async function startBaseline(args: string[]): Promise<Server> {
  const child = track(
    fork(BASELINE, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const port = await Promise.race([
    new Promise<number>((resolve, reject) =>
      child.once('message', (message: { type?: string; port?: number }) =>
        message.type === 'listening' && message.port
          ? resolve(message.port)
          : reject(new Error(`baseline server sent ${JSON.stringify(message)}`)),
      ),
    ),
    exitedEarly('baseline', child),
  ]);
  return { name: 'baseline', url: `http://127.0.0.1:${port}`, child };
}

export async function stopServer(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The sum over the server's process and its children (cluster workers) of VmHWM, in MiB. */
export async function peakRssMiB(server: Server): Promise<number> {
  let kib = 0;
  for (const pid of [server.child.pid!, ...(await childPids(server.child.pid!))]) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    kib += Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  }
  return Math.round(kib / 1024);
}

async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

/** For a bench that stops early: no server outlives it. */
export function stopAllServers(): void {
  for (const child of children) child.kill('SIGTERM');
}
