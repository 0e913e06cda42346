import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildOptions } from './embedded-postgres-process.ts';

export interface EmbeddedDatabase {
  /** Connection URL of the `postgres` superuser database; create application databases from it. */
  adminUrl: string;
  port: number;
  pid: number;
  /** Stops the server (a fast shutdown) and waits for its process to exit. */
  stop(): Promise<void>;
}

// Same extension as this module: .ts under tsx and vitest, .js once compiled.
const childModule = fileURLToPath(
  new URL(`./embedded-postgres-process${import.meta.url.slice(-3)}`, import.meta.url),
);

function waitForMessage(child: ChildProcess, types: ChildMessage['type'][]): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage) => {
      if (!types.includes(message.type)) return;
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`embedded PostgreSQL supervisor exited early (code ${code}, signal ${signal})`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
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
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const started = await waitForMessage(child, ['ready', 'failed']);
  if (started.type === 'failed') throw new Error(started.message);

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${options.port}/postgres`,
    port: options.port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || !child.connected) return exited;
      child.send({ type: 'stop' });
      await exited;
    },
  };
}
