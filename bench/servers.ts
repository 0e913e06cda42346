// The two servers under test, each forked into a process of its own on a random loopback port, so that
// neither shares an event loop with the load generator.
import { type ChildProcess, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface Server {
  name: 'service' | 'baseline';
  url: string;
  child: ChildProcess;
}

const SCRIPTS: Record<Server['name'], string> = {
  service: fileURLToPath(new URL('./service-server.ts', import.meta.url)),
  baseline: fileURLToPath(new URL('./baseline-server.ts', import.meta.url)),
};

// The service keeps its rate limiter (its cost is part of every request), with a budget that no run here
// can spend: 600 a minute per key, the production default, would refuse all but the first second.
const ENVIRONMENT: Record<Server['name'], Record<string, string>> = {
  service: { RATE_LIMIT_PER_MINUTE: '1000000' },
  baseline: {},
};

const children = new Set<ChildProcess>();

/** Forks the server with these command-line arguments; it reports its port over IPC once listening. */
export async function startServer(name: Server['name'], args: string[]): Promise<Server> {
  const child = fork(SCRIPTS[name], args, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...ENVIRONMENT[name] },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} server did not start within 30 s`)), 30_000);
    child.once('message', (message: { type?: string; port?: number }) => {
      clearTimeout(timer);
      if (message.type === 'listening' && message.port) resolve(message.port);
      else reject(new Error(`${name} server sent ${JSON.stringify(message)}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} server exited with code ${code} before listening`));
    });
  });
  return { name, url: `http://127.0.0.1:${port}`, child };
}

export async function stopServer(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The most memory the server's process has held resident so far (Linux: VmHWM), in MiB. */
export async function peakRssMiB(server: Server): Promise<number> {
  const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmHWM in /proc/${server.child.pid}/status`);
  return Math.round(Number(kib) / 1024);
}

/** For a bench that stops early: no server outlives it. */
export function stopAllServers(): void {
  for (const child of children) child.kill('SIGTERM');
}
