import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/process.ts';

const FLAGS_MODULE = join(REPO_ROOT, 'src/platform/v8-flags.ts');
// Objects from one allocation site that all stay alive through scavenges: what V8 pretenures. With
// `flags`, the server's own module (transpiled as it is, imported first) runs before them. Plain Node:
// tsx's loader changes what V8 decides, so it would hide the decision the test looks for.
const workload = (flags: boolean) => `${flags ? "import './v8-flags.mjs';\n" : ''}
function make(n) { return { n, pair: [n, n + 1] }; }
const kept = [];
for (let i = 0; i < 3e6; i++) kept.push(make(i));
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bl-v8-flags-'));
  const { outputText } = ts.transpileModule(readFileSync(FLAGS_MODULE, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  });
  await writeFile(join(dir, 'v8-flags.mjs'), outputText);
  await writeFile(join(dir, 'plain.mjs'), workload(false));
  await writeFile(join(dir, 'with-flags.mjs'), workload(true));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** V8's pretenuring decisions ("… => tenure") while a child process runs a workload file. */
async function tenureDecisions(file: 'plain.mjs' | 'with-flags.mjs'): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--trace-pretenuring-statistics', join(dir, file)],
    { env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 16 * 2 ** 20 },
  );
  return stdout.split('\n').filter((line) => line.includes('=> tenure')).length;
}

describe('the server process V8 flags', () => {
  it('V8 pretenures allocations that survive, unless told otherwise (the workload shows the flag)', async () => {
    expect(await tenureDecisions('plain.mjs')).toBeGreaterThan(0);
  });

  it('turn allocation-site pretenuring off', async () => {
    expect(await tenureDecisions('with-flags.mjs')).toBe(0);
  });

  it('are set by the first module the server imports', () => {
    const firstImport = readFileSync(join(REPO_ROOT, 'src/server.ts'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('import '));
    expect(firstImport).toBe("import './platform/v8-flags.ts';");
  });
});
