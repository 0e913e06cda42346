// A real HAProxy (Debian's, 2.6) on loopback in front of service replicas: round robin, an HTTP health
// check on /readiness, one log line per request (which replica, status, how it ended) and the stats page
// (each replica's state as HAProxy sees it).
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { type AppProcess, executablesMissing, removeTempDir, run, startProcess, waitFor } from './process.ts';

export const HAPROXY = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';
export const haproxyMissing = () =>
  executablesMissing([HAPROXY], 'install it with apt-get install haproxy (or set HAPROXY_BIN)');

export interface HaproxyOptions {
  /** Replicas by name, each listening on 127.0.0.1:port. */
  servers: { name: string; port: number }[];
  /** Health check interval; a replica is marked down after `fall` failed checks, up after `rise` good ones. */
  checkIntervalMs?: number;
  fall?: number;
  rise?: number;
}

/** One request as HAProxy logged it. */
export interface HaproxyLogLine {
  /** When HAProxy received the request's first byte (epoch ms). */
  receivedAt: number;
  /** When HAProxy sent the response's last byte, or gave up (epoch ms). */
  endedAt: number;
  backend: string;
  /** The replica that answered (after any connection retry), or <NOSRV>. */
  server: string;
  method: string;
  path: string;
  /** -1 when no response was received. */
  status: number;
  /** Termination state, `----` for a request that ended normally (HAProxy's "Session state at disconnection"). */
  termination: string;
  /** Connection retries; a leading + means the request was redispatched to another replica. */
  retries: string;
  totalMs: number;
  idempotencyKey: string;
}

export interface Haproxy {
  port: number;
  url: string;
  process: AppProcess;
  /** Requests to the replicas' backend, in log order. */
  requests(): HaproxyLogLine[];
  /** Each replica's state from the stats page: UP, DOWN, or a transition such as `UP 1/2`. */
  serverStates(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export const BACKEND = 'replicas';
// Logged when the request ends: that moment (epoch ms), and its active time since its first byte (%Ta).
const LOG_FORMAT = '%[date(0,ms)] %b %s %HM %HP %ST %tsc %rc %Ta %hr';
const LOG_LINE = /^(\d+) (\S+) (\S+) (\S+) (\S+) (-?\d+) (\S{4}) (\+?\d+) (-?\d+) \{(.*)\}$/;

/**
 * The configuration, and why each retry setting is (or is not) there. HAProxy retries a request only
 * when it could not connect (`retry-on conn-failure`), then on another replica (`redispatch`): such a
 * request never reached the application, so resending it is safe whatever its method — as nginx's
 * default `proxy_next_upstream error timeout` does for a POST. No `empty-response` or `response-timeout`:
 * those resend a POST that a replica may have executed, which only the client can do safely (with its
 * Idempotency-Key), and they would hide a replica that drops accepted requests.
 */
export function haproxyConfig(options: HaproxyOptions & { port: number; statsPort: number }): string {
  const { checkIntervalMs = 500, fall = 2, rise = 2 } = options;
  return [
    'global',
    '  log stdout format raw local0',
    '  maxconn 1000',
    'defaults',
    '  mode http',
    '  log global',
    `  log-format "${LOG_FORMAT}"`,
    '  option forwardfor',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout queue 5s',
    '  timeout check 1s',
    '  retries 2',
    '  option redispatch 1',
    '  retry-on conn-failure',
    'frontend api',
    `  bind 127.0.0.1:${options.port}`,
    '  capture request header Idempotency-Key len 100',
    `  default_backend ${BACKEND}`,
    `backend ${BACKEND}`,
    '  balance roundrobin',
    '  option httpchk GET /readiness',
    '  http-check expect status 200',
    `  default-server inter ${checkIntervalMs}ms fall ${fall} rise ${rise}`,
    ...options.servers.map(({ name, port }) => `  server ${name} 127.0.0.1:${port} check`),
    'listen stats',
    `  bind 127.0.0.1:${options.statsPort}`,
    '  stats enable',
    '  stats uri /stats',
    '',
  ].join('\n');
}

export function parseLogLine(line: string): HaproxyLogLine | undefined {
  const match = LOG_LINE.exec(line);
  if (!match) return undefined;
  const [, endedAt, backend, server, method, path, status, termination, retries, totalMs, key] = match;
  return {
    receivedAt: Number(endedAt) - Number(totalMs),
    endedAt: Number(endedAt),
    backend: backend!,
    server: server!,
    method: method!,
    path: path!,
    status: Number(status),
    termination: termination!,
    retries: retries!,
    totalMs: Number(totalMs),
    idempotencyKey: key!,
  };
}

/** Starts HAProxy in the foreground (checked with `haproxy -c` first) and waits until every server is UP. */
export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  const port = await freePort();
  let statsPort = await freePort();
  while (statsPort === port) statsPort = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'branch-loans-haproxy-'));
  await chmod(dir, 0o755);
  const file = join(dir, 'haproxy.cfg');
  await writeFile(file, haproxyConfig({ ...options, port, statsPort }), { mode: 0o644 });
  const checked = await run(HAPROXY, ['-c', '-f', file]).catch(async (error: Error) => {
    await removeTempDir(dir);
    throw error;
  });
  if (checked.code !== 0) {
    await removeTempDir(dir);
    throw new Error(`haproxy -c rejected the configuration:\n${checked.stdout}${checked.stderr}`);
  }

  const proc = startProcess(HAPROXY, ['-db', '-f', file], process.env, dir);
  const serverStates = async () => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
    const [header = '', ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const columns = header.split(',');
    const [proxy, name, status] = ['pxname', 'svname', 'status'].map((column) => columns.indexOf(column));
    const states: Record<string, string> = {};
    for (const row of rows) {
      const cells = row.split(',');
      if (cells[proxy!] === BACKEND && cells[name!] !== 'BACKEND') states[cells[name!]!] = cells[status!]!;
    }
    return states;
  };
  const stop = async () => {
    await proc.stop();
    await removeTempDir(dir);
  };
  try {
    await waitFor(
      'HAProxy to mark every replica UP',
      async () => {
        const states = await serverStates();
        return options.servers.every(({ name }) => states[name] === 'UP');
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${proc.output()}`, { cause: error });
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    process: proc,
    requests: () =>
      proc.stdout
        .map(parseLogLine)
        .filter((line): line is HaproxyLogLine => line !== undefined && line.backend === BACKEND),
    serverStates,
    stop,
  };
}
