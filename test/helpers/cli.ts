import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO_ROOT } from './process.ts';

const exec = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `src/cli/<command>.ts` as `npm run` would, with the environment plus `env`, to its end. */
export async function runCli(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      ['--import', 'tsx', `src/cli/${command}.ts`, ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, APP_ENV: 'test', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as CliResult;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
