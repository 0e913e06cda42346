// The two servers under test, each in a process of its own on a loopback port, so that neither shares an
// event loop with the load generator. The service runs as its image does: compiled (tsc) into a directory
// laid out like /app (src/, migrations/, package.json, node_modules/), started with `node src/server.js`
// and configured by its environment, in a memory cgroup with the production container's limit (Node sizes
// its heap from it, as it does in the container). The baseline is forked from its TypeScript source.
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { mkdir, open, readFile, rmdir, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export interface Server {
  /** `workers`: the service with WEB_CONCURRENCY workers. */
  name: 'service' | 'workers' | 'baseline';
  url: string;
  child: ChildProcess;
  /** Removes the server's memory cgroup, once its processes are gone. */
  cleanUp?: () => Promise<void>;
}

/**
 * The memory limit of the production API container (compose.prod.yaml, the Kubernetes production
 * overlay): 2 GiB. Node derives its heap limit from it (1,048 MiB here) — without a limit, from the
 * machine's memory (4,144 MiB on 24 GiB).
 */
export const PRODUCTION_MEMORY_LIMIT_MIB = 2048;

/** The image's NODE_OPTIONS (its runtime stage's `ENV NODE_OPTIONS`; a test keeps the two equal). */
export const IMAGE_NODE_OPTIONS = '--max-semi-space-size=16 --max-old-space-size=512';

const CGROUP_V2 = '/sys/fs/cgroup';
const CGROUP_V1_MEMORY = '/sys/fs/cgroup/memory';

/**
 * A memory cgroup of `mib` MiB named `name` (cgroup v2 where it has the memory controller, else v1);
 * needs root. Returns its directory.
 */
async function memoryCgroup(name: string, mib: number): Promise<string> {
  const bytes = String(mib * 2 ** 20);
  const v2 = (await readFile(join(CGROUP_V2, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
  const [root, limitFile] = v2.includes('memory')
    ? [CGROUP_V2, 'memory.max']
    : [CGROUP_V1_MEMORY, 'memory.limit_in_bytes'];
  const dir = join(root, `bl-bench-${process.pid}-${name}`);
  try {
    await mkdir(dir);
    await writeFile(join(dir, limitFile), bytes);
  } catch (error) {
    throw new Error(
      `cannot make a memory cgroup for the service at ${dir} (${(error as Error).message}); run the bench as ` +
        'root, or pass --memory-limit 0 to run the service without a memory limit',
    );
  }
  return dir;
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
 * `environment` on top, in a memory cgroup of `memoryLimitMib` (0: none); its log lines (one a request at
 * info) go to `logFile`.
 */
export async function startService(
  name: 'service' | 'workers',
  appDir: string,
  environment: Record<string, string>,
  logFile: string,
  memoryLimitMib: number,
): Promise<Server> {
  const port = await freePort();
  const cgroup = memoryLimitMib > 0 ? await memoryCgroup(name, memoryLimitMib) : undefined;
  const command = [process.execPath, 'src/server.js'];
  // The shell joins the cgroup, then becomes the service: the limit applies from its first allocation.
  const [file, ...args] = cgroup ? ['/bin/sh', '-c', JOIN_CGROUP, 'sh', cgroup, ...command] : command;
  const log = await open(logFile, 'a');
  const child = track(
    spawn(file!, args, {
      cwd: appDir,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        NODE_OPTIONS: IMAGE_NODE_OPTIONS,
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
  const cleanUp = cgroup ? () => removeCgroup(cgroup) : undefined;
  try {
    await ready(url, child, name);
  } catch (error) {
    await stopServer({ name, url, child, cleanUp });
    throw error;
  }
  return { name, url, child, cleanUp };
}

const JOIN_CGROUP = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"';

/** A cgroup can be removed once the kernel has let go of its last process, which may take a moment. */
async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await rmdir(dir);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EBUSY' || attempt === 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
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
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  await server.cleanUp?.();
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
