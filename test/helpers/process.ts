// Real server processes for end-to-end tests: spawn in a process group of their own, read their
// JSON log lines, wait for lines and for exit, and always clean up (process group, then PostgreSQL).
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than undefined/false; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 50 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== undefined && result !== false) return result;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}

// Variables the app reads: a test sets them explicitly, so nothing leaks in from the shell running vitest.
const APP_VARIABLE =
  /^(APP_ENV|PORT|HOST|HTTP_.*|DATABASE_.*|EMBEDDED_PG_.*|LOG_.*|SEED_ON_START|LOAN_.*|SHUTDOWN_.*|IDEMPOTENCY_.*|TRUST_PROXY|PUBLIC_BASE_URL|AUTH_REQUIRED|BOOTSTRAP_ADMIN_KEY.*|RATE_LIMIT_.*|REDIS_URL.*|CORS_ORIGINS|GIT_COMMIT|WEB_CONCURRENCY|OVERLOAD_.*|MIGRATE_ON_START|MIGRATION_DATABASE_URL|JOBS_IN_PROCESS)$/;

/** The environment of the test process without any app variable (DATABASE_URL included), plus `vars`. */
export function appEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!APP_VARIABLE.test(name) && name !== 'NODE_OPTIONS') env[name] = value;
  }
  return { ...env, ...vars };
}

export interface AppProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Parsed JSON lines of stdout, in order. */
  readonly logs: LogLine[];
  /** Raw stdout and stderr lines. */
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the first log line (past or future) matching; rejects on timeout or exit. */
  waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>;
  /** Resolves once the process has exited and its stdout is fully read. */
  waitForExit(timeoutMs?: number): Promise<ExitStatus>;
  readonly exitStatus: ExitStatus | undefined;
  /** Sends `signal` to the process, or with `group` to its whole process group (like a terminal's Ctrl-C). */
  signal(signal: NodeJS.Signals, options?: { group?: boolean }): void;
  /** SIGTERM to the group, SIGKILL if it has not exited in `graceMs`. Safe to call at any time. */
  stop(graceMs?: number): Promise<void>;
  /** Everything it printed, for failure messages. */
  output(): string;
}

function messageMatcher(match: string | ((line: LogLine) => boolean)): (line: LogLine) => boolean {
  return typeof match === 'string' ? (line) => line.msg === match : match;
}

/** `node --import tsx src/server.ts` with exactly the given app variables, as a process group leader. */
export function startServer(vars: Record<string, string>): AppProcess {
  return startProcess(process.execPath, ['--import', 'tsx', 'src/server.ts'], appEnv(vars));
}

export function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd = REPO_ROOT,
): AppProcess {
  const child = spawn(command, args, {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };

  const stdoutLines = createInterface({ input: child.stdout! });
  stdoutLines.on('line', (line) => {
    stdout.push(line);
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line; kept in stdout
    }
    notify();
  });
  const stdoutClosed = new Promise<void>((resolve) => stdoutLines.once('close', resolve));
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));

  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
      notify();
    });
  });

  const output = () => [...stdout, ...stderr.map((line) => `[stderr] ${line}`)].join('\n');

  const waitForExit = async (timeoutMs = 30_000): Promise<ExitStatus> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`process ${pid} did not exit within ${timeoutMs} ms\n${output()}`)),
        timeoutMs,
      );
    });
    try {
      const status = await Promise.race([exited, timeout]);
      // stdout belongs to this process alone, so it ends when the process does.
      await Promise.race([stdoutClosed, sleep(2_000)]);
      return status;
    } finally {
      clearTimeout(timer);
    }
  };

  const signal = (name: NodeJS.Signals, options: { group?: boolean } = {}) => {
    process.kill(options.group ? -pid : pid, name);
  };

  return {
    child,
    pid,
    logs,
    stdout,
    stderr,
    get exitStatus() {
      return exitStatus;
    },
    output,
    signal,
    waitForExit,
    waitForLog(match, timeoutMs = 30_000) {
      const matches = messageMatcher(match);
      return new Promise<LogLine>((resolve, reject) => {
        const check = () => {
          const found = logs.find(matches);
          if (found) return finish(() => resolve(found));
          if (exitStatus) {
            finish(() =>
              reject(
                new Error(
                  `process exited (${JSON.stringify(exitStatus)}) before logging ${match}\n${output()}`,
                ),
              ),
            );
          }
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no log line ${match} within ${timeoutMs} ms\n${output()}`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 15_000) {
      if (exitStatus) return;
      const kill = (name: NodeJS.Signals) => {
        try {
          process.kill(-pid, name);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      };
      kill('SIGTERM');
      const status = await Promise.race([exited, sleep(graceMs)]);
      if (!status) {
        kill('SIGKILL');
        await exited;
      }
    },
  };
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` to its end (killed after `timeoutMs`), with `input` on stdin. Rejects only if it cannot start. */
export function run(
  command: string,
  args: string[],
  {
    input,
    timeoutMs = 30_000,
    env,
    cwd = REPO_ROOT,
  }: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/**
 * Why one of `paths` is not executable here (with how to install it), or undefined when all are.
 * `install` names the Debian package and the variables that point at other binaries.
 */
export function executablesMissing(paths: string[], install: string): string | undefined {
  for (const path of paths) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      return `no executable ${path}: ${install}`;
    }
  }
  return undefined;
}

/**
 * Tests that need a binary skip (saying why) on a machine without it, but never in CI, where a missing
 * binary must fail the run rather than pass it silently.
 */
export function skipWhenMissing(tests: string, missing: string | undefined): boolean {
  if (missing === undefined || process.env.CI === 'true') return false;
  console.warn(`Skipping ${tests}: ${missing}`);
  return true;
}

/** True when nothing accepts TCP connections on 127.0.0.1:port (connection refused). */
export function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve(true);
      else reject(error);
    });
  });
}

/** The PID in `dataDir`/postmaster.pid, or undefined when PostgreSQL is not running there. */
export function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Cleanup: waits for the PostgreSQL of `dataDir` to go away (its supervisor stops it when the app
 * exits), and kills it after `graceMs` if it did not, so no server outlives a failed test.
 */
export async function ensurePostgresStopped(dataDir: string, graceMs = 10_000): Promise<void> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const pid = postmasterPid(dataDir);
    if (pid === undefined || !isAlive(pid)) return;
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT'); // immediate shutdown; the postmaster takes its children with it
      await waitFor(`PostgreSQL ${pid} to exit`, () => !isAlive(pid), { timeoutMs: 5_000 }).catch(() =>
        process.kill(pid, 'SIGKILL'),
      );
      return;
    }
    await sleep(100);
  }
}

/** A fresh temporary directory; remove it with `removeTempDir`. */
export function makeTempDir(prefix = 'branch-loans-e2e-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
