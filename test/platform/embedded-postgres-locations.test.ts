// Where the embedded PostgreSQL's binaries and data go when the postgres user cannot reach them.
import { chmod, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  locateDataDir,
  STATE_DIR,
  stageDirectory,
  unreachableAncestor,
} from '../../src/platform/embedded-postgres-locations.ts';
import { makeTempDir, removeTempDir } from '../helpers/process.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fresh temporary directory with the given mode (mkdtemp makes it 0700). */
async function tempDir(mode: number): Promise<string> {
  const dir = await makeTempDir('branch-loans-locations-');
  cleanups.push(() => removeTempDir(dir));
  await chmod(dir, mode);
  return dir;
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

describe('unreachableAncestor', () => {
  it('names the first directory on the way that others may not enter', async () => {
    const privateDir = await tempDir(0o700);
    await mkdir(join(privateDir, 'a'), { mode: 0o755 });

    expect(unreachableAncestor(join(privateDir, 'a', 'postgres'))).toBe(privateDir);
  });

  it('is undefined when others may enter every directory on the way, missing ones included', async () => {
    const openDir = await tempDir(0o711);

    expect(unreachableAncestor(join(openDir, 'missing', 'postgres'))).toBeUndefined();
  });

  it('follows symbolic links to where the path really is', async () => {
    const privateDir = await tempDir(0o700);
    const openDir = await tempDir(0o755);
    await mkdir(join(privateDir, 'real'));
    await symlink(join(privateDir, 'real'), join(openDir, 'link'));

    expect(unreachableAncestor(join(openDir, 'link', 'postgres'))).toBe(privateDir);
  });
});

describe('locateDataDir', () => {
  it('keeps the configured directory when PostgreSQL runs as the current user', async () => {
    const configured = join(await tempDir(0o700), 'postgres');

    expect(locateDataDir(configured, false)).toEqual({ dataDir: configured });
  });

  it('keeps the configured directory when the postgres user can reach it', async () => {
    const configured = join(await tempDir(0o755), 'postgres');

    expect(locateDataDir(configured, true)).toEqual({ dataDir: configured });
  });

  it('moves a directory the postgres user cannot reach to one of its own under the state directory', async () => {
    const privateDir = await tempDir(0o700);
    const configured = join(privateDir, 'postgres');
    const other = join(privateDir, 'other');

    const location = locateDataDir(configured, true);
    expect(location).toEqual({
      dataDir: expect.stringMatching(new RegExp(`^${STATE_DIR}/data/[0-9a-f]{12}$`)),
      blockedBy: privateDir,
    });
    expect(locateDataDir(configured, true)).toEqual(location);
    expect(locateDataDir(other, true).dataDir).not.toBe(location.dataDir);
    expect(locateDataDir(location.dataDir, true)).toEqual({ dataDir: location.dataDir });
  });

  it('follows a link out of a directory the postgres user cannot enter to one it can reach', async () => {
    const privateDir = await tempDir(0o700);
    const reachable = join(await tempDir(0o755), 'postgres');
    await mkdir(reachable);
    const configured = join(privateDir, 'postgres');
    await symlink(reachable, configured);

    expect(locateDataDir(configured, true)).toEqual({ dataDir: reachable, blockedBy: privateDir });
  });
});

describe('stageDirectory', () => {
  /** bin/initdb (executable), lib/libpq.so → libpq.so.5 (a relative link), share/postgres.bki. */
  async function fakeInstallation(dir: string): Promise<void> {
    await mkdir(join(dir, 'bin'), { recursive: true });
    await mkdir(join(dir, 'lib'));
    await mkdir(join(dir, 'share'));
    await writeFile(join(dir, 'bin', 'initdb'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'lib', 'libpq.so.5'), 'library', { mode: 0o644 });
    await symlink('libpq.so.5', join(dir, 'lib', 'libpq.so'));
    await writeFile(join(dir, 'share', 'postgres.bki'), 'catalog', { mode: 0o644 });
  }

  it('copies a tree out of a private directory into one others can enter, modes and links kept', async () => {
    const source = join(await tempDir(0o700), 'native');
    await fakeInstallation(source);
    const target = join(await tempDir(0o755), 'staged', 'postgres-17');

    await stageDirectory(source, target);

    expect(unreachableAncestor(join(target, 'bin', 'initdb'))).toBeUndefined();
    expect(await modeOf(join(target, '..'))).toBe(0o755);
    expect(await modeOf(target)).toBe(0o755);
    expect(await modeOf(join(target, 'bin'))).toBe(await modeOf(join(source, 'bin')));
    expect(await modeOf(join(target, 'bin', 'initdb'))).toBe(0o755);
    expect(await modeOf(join(target, 'lib', 'libpq.so.5'))).toBe(0o644);
    expect(await readlink(join(target, 'lib', 'libpq.so'))).toBe('libpq.so.5');
    expect(await readFile(join(target, 'share', 'postgres.bki'), 'utf8')).toBe('catalog');
    expect(await readdir(join(target, '..'))).toEqual(['postgres-17']);
  });

  it('reuses a staged copy, and concurrent stagings leave one complete copy', async () => {
    const source = join(await tempDir(0o700), 'native');
    await fakeInstallation(source);
    const target = join(await tempDir(0o755), 'postgres-17');

    await Promise.all([stageDirectory(source, target), stageDirectory(source, target)]);
    await writeFile(join(source, 'share', 'postgres.bki'), 'changed');
    await stageDirectory(source, target);

    expect(await readFile(join(target, 'share', 'postgres.bki'), 'utf8')).toBe('catalog');
    expect((await readdir(join(target, '..'))).filter((name) => name.startsWith('postgres-17'))).toEqual([
      'postgres-17',
    ]);
  });
});
