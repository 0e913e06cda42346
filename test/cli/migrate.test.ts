import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

const USAGE = 'usage: npm run db:migrate -- [--database-url postgres://…]';

const runMigrateCli = (args: string[]) => runCli('migrate', args);

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
