import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const USAGE = 'usage: npm run db:migrate -- [--database-url postgres://…]';

async function runMigrateCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/migrate.ts', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, APP_ENV: 'test' },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('db:migrate arguments', () => {
  it('prints its usage for --help and touches no database', async () => {
    expect(await runMigrateCli(['--help'])).toEqual({ code: 0, stdout: `${USAGE}\n`, stderr: '' });
  });

  it('rejects an unknown argument with a one-line message and exit code 2', async () => {
    expect(await runMigrateCli(['--databse-url', 'postgres://h/db'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `migrate: unknown argument "--databse-url"; ${USAGE}\n`,
    });
  });

  it('rejects an invalid --database-url as a configuration error with exit code 1', async () => {
    expect(await runMigrateCli(['--database-url', 'mysql://h/db'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Invalid configuration: DATABASE_URL must start with postgres:// (got mysql://)\n',
    });
  });
});
