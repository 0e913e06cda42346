import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildOptions } from './embedded-postgres-process.ts';

export interface EmbeddedDatabase {
  /** Connection URL of the `postgres` superuser database; create application databases from it. */
  adminUrl: string;
  port: number;
  pid: number;
  /**
   * Where the cluster is: the configured data directory, or, as root when the postgres user cannot
   * reach that, the directory under /var/lib/branch-loans it links to.
   */
  dataDir: string;
  /** Stops the server (a fast shutdown) and waits for its process to exit. */
  stop(): Promise<void>;
}

// Same extension as this module: .ts under tsx and vitest, .js once compiled.
const childModule = fileURLToPath(
  new URL(`./embedded-postgres-process${import.meta.url.slice(-3)}`, import.meta.url),
);

const STDERR_LINES_IN_ERRORS = 8;

/** Passes the child's stderr on to ours and keeps its last lines, for when it dies without a word. */
function followStderr(child: ChildProcess): string[] {
  const recent: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    process.stderr.write(`${line}\n`);
    recent.push(line);
    if (recent.length > STDERR_LINES_IN_ERRORS) recent.shift();
  });
  return recent;
}

type StartMessage = Extract<ChildMessage, { type: 'ready' | 'failed' }>;

function waitUntilStarted(child: ChildProcess, stderr: string[]): Promise<StartMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage) => {
      if (message.type === 'stopped') return;
      cleanup();
      resolve(message);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    // 'close' rather than 'exit': by then its stderr has been read to the end.
    const onClose = (code: number | null, signal: string | null) => {
      cleanup();
      const output = stderr.length > 0 ? `: ${stderr.join(' | ')}` : ' without output';
      reject(
        new Error(`embedded PostgreSQL supervisor exited early (code ${code}, signal ${signal})${output}`),
      );
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('error', onError);
      child.off('close', onClose);
    };
    child.on('message', onMessage);
    child.on('error', onError);
    child.on('close', onClose);
  });
}

/** The `postgres` superuser's database on the embedded server (trust, loopback only). */
export function embeddedAdminUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
}): Promise<EmbeddedDatabase> {
  const childOptions: ChildOptions = {
    ...options,
    logFile: join(options.dataDir, '..', `${options.dataDir.split('/').pop()}.log`),
  };
  const child = fork(childModule, [JSON.stringify(childOptions)], {
    detached: true,
    execArgv: childModule.endsWith('.ts') ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const started = await waitUntilStarted(child, followStderr(child));
  if (started.type === 'failed') throw new Error(started.message);

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    adminUrl: embeddedAdminUrl(options.port),
    port: options.port,
    pid: child.pid!,
    dataDir: started.dataDir,
    async stop() {
      if (child.exitCode !== null || !child.connected) return exited;
      child.send({ type: 'stop' });
      await exited;
    },
  };
}
