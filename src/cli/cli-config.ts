import { type Config, ConfigError, loadConfig } from '../config.ts';

type Env = Record<string, string | undefined>;

/** The configuration, or a one-line `Invalid configuration: …` on stderr and exit code 1. */
export function readConfigOrExit(env: Env = process.env): Config {
  try {
    return loadConfig(env, { stdoutIsTty: process.stdout.isTTY });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Invalid configuration: ${error.message}`);
    process.exit(1);
  }
}
