import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { V8_FLAGS } from '../../src/platform/v8-flags.ts';
import { REPO_ROOT } from '../helpers/process.ts';

// Sets the V8 flags given as arguments the way the module does, then allocates objects from one site
// that all stay alive through scavenges: what V8 pretenures. Plain Node (tsx's loader changes what V8
// decides, so it would hide the decision the test looks for).
const WORKLOAD = `
import { setFlagsFromString } from 'node:v8';
for (const flag of process.argv.slice(2)) setFlagsFromString(flag);
function make(n) { return { n, pair: [n, n + 1] }; }
const kept = [];
for (let i = 0; i < 3e6; i++) kept.push(make(i));
`;

let dir: string;
let workload: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bl-v8-flags-'));
  workload = join(dir, 'workload.mjs');
  await writeFile(workload, WORKLOAD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** V8's pretenuring decisions ("… => tenure") while a child process runs the workload with `flags`. */
async function tenureDecisions(flags: readonly string[]): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--trace-pretenuring-statistics', workload, ...flags],
    { env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 16 * 2 ** 20 },
  );
  return stdout.split('\n').filter((line) => line.includes('=> tenure')).length;
}

describe('the server process V8 flags', () => {
  it('V8 pretenures allocations that survive, unless told otherwise (the workload shows the flag)', async () => {
    expect(await tenureDecisions([])).toBeGreaterThan(0);
  });

  it('turn allocation-site pretenuring off', async () => {
    expect(V8_FLAGS).toContain('--no-allocation-site-pretenuring');
    expect(await tenureDecisions(V8_FLAGS)).toBe(0);
  });

  it('are set by the first module the server imports', () => {
    const firstImport = readFileSync(join(REPO_ROOT, 'src/server.ts'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('import '));
    expect(firstImport).toBe("import './platform/v8-flags.ts';");
  });
});
