// wrk (Debian's `wrk`), one thread, in a process of its own: the load generator then costs the servers as
// little as a generator can on a two-core machine. The requests are built by wrk/load.lua.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPTS = {
  load: fileURLToPath(new URL('./wrk/load.lua', import.meta.url)),
  probe: fileURLToPath(new URL('./wrk/probe.lua', import.meta.url)),
};
const RESULT_LINE = /^wrk-result (\{.*\})$/m;

export interface WrkRun {
  url: string;
  connections: number;
  seconds: number;
  /** A request without an answer after this long counts as a timeout (and not in the latencies). */
  timeoutSeconds: number;
  headers: Record<string, string>;
  /** A file of request paths, one a line, sent in turn. */
  pathsFile: string;
  method: 'GET' | 'POST';
  bodyFile?: string;
  /** Each request gets the Idempotency-Key PREFIX<n>. */
  keyPrefix?: string;
  /** probe.lua: pause this long before each request. */
  delayMs?: number;
}

export interface WrkResult {
  durationUs: number;
  requests: number;
  /** Socket errors (connect, read, write) and timeouts. */
  errors: number;
  timeouts: number;
  /** Answers that were neither 2xx nor 3xx. */
  non2xx: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

function argumentsOf(run: WrkRun): string[] {
  const options = [
    `paths=${run.pathsFile}`,
    `method=${run.method}`,
    ...(run.bodyFile ? [`body=${run.bodyFile}`] : []),
    ...(run.keyPrefix ? [`keys=${run.keyPrefix}`] : []),
    ...(run.delayMs !== undefined ? [`delay=${run.delayMs}`] : []),
  ];
  return [
    '--threads',
    '1',
    '--connections',
    String(run.connections),
    '--duration',
    `${run.seconds}s`,
    '--timeout',
    `${run.timeoutSeconds}s`,
    '--script',
    run.delayMs !== undefined ? SCRIPTS.probe : SCRIPTS.load,
    ...Object.entries(run.headers).flatMap(([name, value]) => ['--header', `${name}: ${value}`]),
    run.url,
    '--',
    ...options,
  ];
}

function parse(output: string): WrkResult {
  const line = RESULT_LINE.exec(output);
  if (!line) throw new Error(`wrk printed no result line:\n${output}`);
  const raw = JSON.parse(line[1]!) as Record<string, number>;
  const at = (name: string) => raw[name] ?? 0;
  return {
    durationUs: at('duration_us'),
    requests: at('requests'),
    errors: at('connect_errors') + at('read_errors') + at('write_errors') + at('timeouts'),
    timeouts: at('timeouts'),
    non2xx: at('non_2xx_3xx'),
    p50Us: at('p50_us'),
    p99Us: at('p99_us'),
    maxUs: at('max_us'),
  };
}

export function wrk(run: WrkRun): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', argumentsOf(run), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT' ? new Error('wrk is not installed (Debian: apt-get install -y wrk)') : error,
      ),
    );
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`wrk exited with code ${code}:\n${output}`));
      else {
        try {
          resolve(parse(output));
        } catch (error) {
          reject(error);
        }
      }
    });
  });
}
