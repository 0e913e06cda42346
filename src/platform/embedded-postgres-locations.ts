// Where the embedded PostgreSQL finds its binaries and keeps its data. PostgreSQL refuses to run as
// root, so as root it runs as the `postgres` system user, who can only reach a file through
// directories that others may enter (o+x). A clone in root's home or in a `mktemp -d` directory is out
// of its reach: what it needs from there is placed under STATE_DIR instead. No existing directory's
// permissions are ever changed.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, type Stats, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const STATE_DIR = '/var/lib/branch-loans';

export const runsAsPostgresUser = (): boolean => process.getuid?.() === 0;

/** `path` with symbolic links resolved as far as it exists. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPath(parent), basename(path));
  }
}

function firstUnenterable(dir: string): string | undefined {
  for (; ; dir = dirname(dir)) {
    const stats = statOrUndefined(dir);
    if (stats?.isDirectory() && (stats.mode & 0o001) === 0) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The first directory that others may not enter on the way to `path`, as written or with its links
 * resolved; undefined when there is none. Missing directories do not count: they are created enterable.
 */
export function unreachableAncestor(path: string): string | undefined {
  return firstUnenterable(dirname(path)) ?? firstUnenterable(dirname(realPath(path)));
}

export interface DataDirLocation {
  /** Where the cluster is. */
  dataDir: string;
  /**
   * Set when the configured directory is out of the postgres user's reach: the directory it cannot
   * enter. The configured path then links to the cluster: when it already links to a directory the
   * postgres user can reach, that directory is used; otherwise a directory of its own under STATE_DIR.
   */
  blockedBy?: string;
}

export function locateDataDir(configuredDir: string, asPostgresUser: boolean): DataDirLocation {
  if (!asPostgresUser) return { dataDir: configuredDir };
  const blockedBy = unreachableAncestor(configuredDir);
  if (blockedBy === undefined) return { dataDir: configuredDir };
  const linked = realPath(configuredDir);
  if (existsSync(linked) && unreachableAncestor(linked) === undefined) return { dataDir: linked, blockedBy };
  const name = createHash('sha256').update(configuredDir).digest('hex').slice(0, 12);
  return { dataDir: join(STATE_DIR, 'data', name), blockedBy };
}

/** `mkdir -p` that leaves every directory it creates enterable by others, whatever the umask. */
export async function mkdirEnterable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let created = dir; ; created = dirname(created)) {
    await chmod(created, 0o755);
    if (created === first) return;
  }
}

/**
 * Copies the directory `source` to `target`, unless `target` exists. The copy is made beside `target`
 * and renamed into place, so an existing `target` is always complete.
 */
export async function stageDirectory(source: string, target: string): Promise<void> {
  if (existsSync(target)) return;
  await mkdirEnterable(dirname(target));
  const partial = await mkdtemp(`${target}.partial-`);
  try {
    await cp(source, partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    // Another process staged it first; theirs is complete.
    if (!existsSync(target)) throw error;
  }
}
